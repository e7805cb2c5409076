import Foundation
public import NIOCore

/// The providers' request bodies and the checks on their answers, per API: pure functions, so that every way an
/// answer can be wrong (not JSON, a wrong number of items, a wrong dimension, indexes out of range) is tested
/// without a network. Each check failure is a `RemoteFailure.malformed` with its metric reason.
public enum RemoteWire {
    static func body(_ object: Any) -> ByteBuffer {
        // Only arrays, dictionaries, strings, numbers and booleans are passed: serialization cannot fail.
        let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data("{}".utf8)
        return ByteBuffer(bytes: data)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ body: ByteBuffer, what: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(body.readableBytesView))
        } catch {
            throw RemoteFailure.malformed(reason: "malformed_json", message: "\(what) is not the expected JSON")
        }
    }

    static func wrongCount(_ got: Int, _ expected: Int, _ what: String) -> RemoteFailure {
        .malformed(reason: "wrong_count", message: "\(got) \(what) for \(expected) inputs")
    }

    // MARK: OpenAI embeddings

    static func openAIEmbeddingsRequest(_ texts: [String], model: String) -> ByteBuffer {
        body(["model": model, "input": texts, "encoding_format": "float"])
    }

    /// The vectors in input order, and the tokens the provider counted (nil: it did not say).
    public static func openAIEmbeddings(_ answer: ByteBuffer, count: Int, dimension: Int?) throws -> (
        vectors: [[Float]], tokens: Int?
    ) {
        let (items, tokens) = try EmbeddingsScanner.scan(answer.readableBytesView)
        guard items.count == count else { throw wrongCount(items.count, count, "embeddings") }
        var vectors = [[Float]?](repeating: nil, count: count)
        for item in items {
            guard let index = item.index, let embedding = item.embedding else {
                throw RemoteFailure.malformed(
                    reason: "malformed_json", message: "an embeddings item lacks its 'index' or 'embedding'")
            }
            guard (0..<count).contains(index), vectors[index] == nil else {
                throw RemoteFailure.malformed(
                    reason: "wrong_count", message: "embedding index \(index) is out of range or repeated")
            }
            vectors[index] = embedding
        }
        let result = vectors.map { $0! }
        try checkDimension(result, dimension)
        return (result, tokens)
    }

    static func checkDimension(_ vectors: [[Float]], _ expected: Int?) throws {
        guard let first = vectors.first else { return }
        let want = expected ?? first.count
        guard let bad = vectors.first(where: { $0.count != want || $0.isEmpty }) else { return }
        throw RemoteFailure.malformed(
            reason: "wrong_dimension", message: "a vector of \(bad.count) values where \(want) are expected")
    }

    // MARK: KServe v2 (open inference protocol, JSON tensors)

    struct InferAnswer: Decodable {
        struct Output: Decodable {
            let name: String
            let shape: [Int]
            let data: FlatNumbers
        }
        let outputs: [Output]
    }

    /// A tensor's `data`: flat, or nested as its shape (both are allowed by the protocol).
    struct FlatNumbers: Decodable {
        var values: [Float] = []

        init(from decoder: any Decoder) throws {
            var container = try decoder.unkeyedContainer()
            while !container.isAtEnd {
                if let v = try? container.decode(Float.self) {
                    values.append(v)
                } else {
                    values += try container.decode(FlatNumbers.self).values
                }
            }
        }
    }

    static func kserveTensor(_ name: String, _ values: [String]) -> [String: Any] {
        ["name": name, "datatype": "BYTES", "shape": [values.count], "data": values]
    }

    static func kserveRequest(_ inputs: [[String: Any]], parameters: [String: Any] = [:]) -> ByteBuffer {
        var request: [String: Any] = ["inputs": inputs]
        if !parameters.isEmpty { request["parameters"] = parameters }
        return body(request)
    }

    /// The output named `name` (else the first), checked to hold `rows` rows; its values and row width.
    static func kserveOutput(_ answer: ByteBuffer, name: String, rows: Int) throws -> (values: [Float], width: Int) {
        let decoded = try decode(InferAnswer.self, answer, what: "the infer answer")
        guard let output = decoded.outputs.first(where: { $0.name == name }) ?? decoded.outputs.first else {
            throw RemoteFailure.malformed(reason: "malformed_json", message: "the infer answer has no outputs")
        }
        let total = output.shape.reduce(1, *)
        guard output.shape.first == rows, total == output.data.values.count else {
            throw RemoteFailure.malformed(
                reason: "wrong_count",
                message:
                    "output '\(output.name)' has shape \(output.shape) and \(output.data.values.count) values for \(rows) inputs"
            )
        }
        return (output.data.values, rows == 0 ? 0 : total / rows)
    }

    public static func kserveEmbeddings(_ answer: ByteBuffer, count: Int, dimension: Int?) throws -> [[Float]] {
        let (values, width) = try kserveOutput(answer, name: "embedding", rows: count)
        let vectors = (0..<count).map { Array(values[($0 * width)..<(($0 + 1) * width)]) }
        try checkDimension(vectors, dimension)
        return vectors
    }

    // MARK: TEI rerank and predict

    struct RankItem: Decodable {
        let index: Int
        let score: Float
    }

    static func teiRerankRequest(query: String, texts: [String], truncate: Bool) -> ByteBuffer {
        body(["query": query, "texts": texts, "raw_scores": true, "truncate": truncate])
    }

    /// Logits in the order of the texts.
    public static func teiRerank(_ answer: ByteBuffer, count: Int) throws -> [Float] {
        let items = try decode([RankItem].self, answer, what: "the rerank answer")
        guard items.count == count else { throw wrongCount(items.count, count, "scores") }
        var logits = [Float?](repeating: nil, count: count)
        for item in items {
            guard (0..<count).contains(item.index), logits[item.index] == nil else {
                throw RemoteFailure.malformed(
                    reason: "wrong_count", message: "rerank index \(item.index) is out of range or repeated")
            }
            logits[item.index] = item.score
        }
        return logits.map { $0! }
    }

    struct LabelScore: Decodable {
        let label: String
        let score: Float
    }

    /// TEI reads a list of two strings as one pair, so a batch of exactly two texts is sent with the first
    /// repeated (the extra answer is dropped: `teiPredict` reads the first `count`). `sent` is how many inputs
    /// went out.
    static func teiPredictRequest(_ inputs: [TextClassificationInput], truncate: Bool) -> (
        body: ByteBuffer, sent: Int
    ) {
        var sequences: [Any] = inputs.map { input -> Any in
            switch input {
            case .text(let t): t
            case .pair(let a, let b): [a, b]
            }
        }
        if sequences.count == 2, sequences.allSatisfy({ $0 is String }) { sequences.append(sequences[0]) }
        return (body(["inputs": sequences, "raw_scores": true, "truncate": truncate]), sequences.count)
    }

    /// Logits per input, in the order of `labels` (nil: taken from the answer, sorted by name); the labels.
    public static func teiPredict(_ answer: ByteBuffer, count: Int, sent: Int? = nil, labels: [String]?) throws -> (
        logits: [[Float]], labels: [String]
    ) {
        let all = try decode([[LabelScore]].self, answer, what: "the predict answer")
        guard all.count == sent ?? count else { throw wrongCount(all.count, sent ?? count, "predictions") }
        let rows = all.prefix(count)
        let names = labels ?? (rows.first.map { $0.map(\.label).sorted() } ?? [])
        let position = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let logits = try rows.map { row -> [Float] in
            guard row.count == names.count, Set(row.map(\.label)).count == names.count else {
                throw RemoteFailure.malformed(
                    reason: "wrong_count",
                    message: "a prediction with \(row.count) labels where \(names.count) are expected")
            }
            var values = [Float](repeating: 0, count: names.count)
            for item in row {
                guard let at = position[item.label] else {
                    throw RemoteFailure.malformed(
                        reason: "wrong_count", message: "a label that the first answer did not have")
                }
                values[at] = item.score
            }
            return values
        }
        return (logits, names)
    }
}
