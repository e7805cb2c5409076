import Foundation
import Hummingbird
import MassModels
import MassRuntime

/// Text classification and rerank, shaped like Hugging Face text-embeddings-inference (TEI):
/// `POST /predict` (`inputs`: a text, a pair `[a, b]`, or a batch of either; `raw_scores`, `truncate`) and
/// `POST /rerank` (`query`, `texts`, `raw_scores`, `return_text`, `truncate`). TEI serves one model per server;
/// Mass takes an optional `model` and, without it, uses the one loaded model of the task. Errors in TEI's
/// envelope `{"error", "error_type"}`. Also KServe `infer` for both tasks.
enum TEIRoutes {
    /// One TEI sequence: a text or a pair.
    enum Sequence: Decodable {
        case text(String)
        case pair(String, String)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) {
                self = .text(text)
            } else if let pair = try? container.decode([String].self), pair.count == 2 {
                self = .pair(pair[0], pair[1])
            } else {
                throw RuntimeError(
                    .invalidInput, "each input must be a string or a pair of strings [a, b]", param: "inputs")
            }
        }

        var input: TextClassificationInput {
            switch self {
            case .text(let t): .text(t)
            case .pair(let a, let b): .pair(a, b)
            }
        }
    }

    /// TEI's `inputs`: one sequence (a string, or a two-string list read as a pair, as TEI reads it) or a batch.
    enum PredictInputs: Decodable {
        case single(Sequence)
        case batch([Sequence])

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let one = try? container.decode(Sequence.self) {
                self = .single(one)
            } else if let many = try? container.decode([Sequence].self) {
                self = .batch(many)
            } else {
                throw RuntimeError(
                    .invalidInput, "'inputs' must be a string, a pair [a, b], or a list of either", param: "inputs")
            }
        }
    }

    struct PredictRequest: Decodable {
        let model: String?
        let inputs: PredictInputs
        let rawScores: Bool?
        let truncate: Bool?
        let truncationDirection: String?

        enum CodingKeys: String, CodingKey {
            case model, inputs, truncate
            case rawScores = "raw_scores"
            case truncationDirection = "truncation_direction"
        }
    }

    struct RerankRequest: Decodable {
        let model: String?
        let query: String
        let texts: [String]
        let rawScores: Bool?
        let returnText: Bool?
        let truncate: Bool?
        let truncationDirection: String?

        enum CodingKeys: String, CodingKey {
            case model, query, texts, truncate
            case rawScores = "raw_scores"
            case returnText = "return_text"
            case truncationDirection = "truncation_direction"
        }
    }

    static func add(to router: Router<MassRequestContext>, state: ServerState) {
        router.post("/predict") { request, context in
            RequestLabels.inference("/predict")
            let body = try await JSONBody.decode(PredictRequest.self, request, limit: state.bodyLimit)
            try checkDirection(body.truncationDirection)
            let service = try resolve(
                body.model, task: .textClassification, as: (any TextClassificationServing).self, state: state)
            let sequences: [Sequence]
            switch body.inputs {
            case .single(let one): sequences = [one]
            case .batch(let many): sequences = many
            }
            try state.check(sequences.flatMap(texts), limits: service.config, param: "inputs")
            guard sequences.count <= service.config.maxInputs else {
                throw RuntimeError(
                    .invalidInput, "\(sequences.count) inputs; this model takes at most \(service.config.maxInputs)",
                    param: "inputs")
            }
            let truncate = body.truncate ?? false
            let logits = try await context.cancellingOnDisconnect {
                try await service.classify(sequences.map(\.input), truncate: truncate)
            }
            let raw = body.rawScores ?? false
            let results: [[[String: Any]]] = logits.map { row in
                let values = raw ? row : service.scores(row)
                return values.enumerated().sorted { $0.element > $1.element }.map {
                    ["score": $0.element, "label": service.labels[$0.offset]] as [String: Any]
                }
            }
            if case .single = body.inputs { return JSONResponse.make(results[0]) }
            return JSONResponse.make(results)
        }
        router.post("/rerank") { request, context in
            RequestLabels.inference("/rerank")
            let body = try await JSONBody.decode(RerankRequest.self, request, limit: state.bodyLimit)
            try checkDirection(body.truncationDirection)
            let service = try resolve(body.model, task: .rerank, as: (any RerankServing).self, state: state)
            guard !body.texts.isEmpty else {
                throw RuntimeError(.invalidInput, "'texts' is empty", param: "texts")
            }
            try state.check(body.texts + [body.query], limits: service.config, param: "texts")
            let truncate = body.truncate ?? false
            let logits = try await context.cancellingOnDisconnect {
                try await service.rerank(query: body.query, texts: body.texts, truncate: truncate)
            }
            let raw = body.rawScores ?? false
            let ranked = logits.enumerated().sorted { $0.element > $1.element }.map { index, logit in
                var entry: [String: Any] = ["index": index, "score": raw ? logit : SequenceClassifier.sigmoid(logit)]
                if body.returnText ?? false { entry["text"] = body.texts[index] }
                return entry
            }
            return JSONResponse.make(ranked)
        }
    }

    private static func texts(_ sequence: Sequence) -> [String] {
        switch sequence {
        case .text(let t): [t]
        case .pair(let a, let b): [a, b]
        }
    }

    /// Truncation keeps the start of the text (TEI's "Right"); "Left" is not implemented.
    private static func checkDirection(_ direction: String?) throws {
        guard let direction, direction.lowercased() != "right" else { return }
        throw RuntimeError(
            .invalidInput, "'truncation_direction' must be \"Right\" (Mass keeps the start of each text)",
            param: "truncation_direction")
    }

    /// The named model, or the one loaded model of the task when no name is given.
    private static func resolve<Serving>(
        _ name: String?, task: ModelTask, as type: Serving.Type, state: ServerState
    ) throws -> Serving {
        if let name { return try state.model(name, as: type, serving: task) }
        let candidates = state.manager.readyNames.filter { (try? state.manager.model($0))?.task == task }
        guard candidates.count == 1 else {
            throw RuntimeError(
                .invalidInput,
                candidates.isEmpty
                    ? "no \(task.rawValue) model is loaded"
                    : "several \(task.rawValue) models are loaded (\(candidates.joined(separator: ", "))); name one with 'model'",
                param: "model")
        }
        return try state.model(candidates[0], as: type, serving: task)
    }

    /// KServe `infer` for text classifiers: one BYTES input of texts (or two of equal length: pairs) → FP32
    /// `logits` and `probabilities` [n, labels].
    static let classifyAdapter = KServeAdapter(task: .textClassification) { infer, model, context, state in
        guard let service = model as? any TextClassificationServing else { throw KServeRoutes.mismatch(model) }
        let columns = try infer.inputs.map(KServeRoutes.textInput)
        guard columns.count == 1 || (columns.count == 2 && columns[0].count == columns[1].count) else {
            throw RuntimeError(
                .invalidInput, "'inputs' must hold one BYTES tensor of texts, or two of the same length (pairs)")
        }
        try state.check(columns.flatMap { $0 }, limits: service.config, param: "inputs")
        let inputs: [TextClassificationInput] =
            columns.count == 1 ? columns[0].map { .text($0) } : zip(columns[0], columns[1]).map { .pair($0, $1) }
        let truncate = infer.flags["truncate"] ?? true
        let logits = try await context.cancellingOnDisconnect { try await service.classify(inputs, truncate: truncate) }
        let n = logits.count
        let labels = service.labels.count
        return try InferResponse(
            model: service, id: infer.id,
            outputs: [
                .init(name: "logits", shape: [n, labels], values: logits.flatMap { $0 }),
                .init(name: "probabilities", shape: [n, labels], values: logits.flatMap(service.scores)),
            ]
        ).encode(for: infer)
    }

    /// KServe `infer` for rerankers: BYTES `query` [1] and BYTES `texts` [n] → FP32 `logits` and `scores`
    /// (sigmoid) [n], in the order of the texts.
    static let rerankAdapter = KServeAdapter(task: .rerank) { infer, model, context, state in
        guard let service = model as? any RerankServing else { throw KServeRoutes.mismatch(model) }
        func column(_ name: String) throws -> [String] {
            guard let input = infer.inputs.first(where: { $0.name == name }) else {
                throw RuntimeError(.invalidInput, "'inputs' must hold BYTES tensors 'query' [1] and 'texts' [n]")
            }
            return try KServeRoutes.textInput(input)
        }
        let query = try column("query")
        let texts = try column("texts")
        guard query.count == 1 else { throw RuntimeError(.invalidInput, "'query' must hold exactly one text") }
        try state.check(texts + query, limits: service.config, param: "texts")
        let truncate = infer.flags["truncate"] ?? true
        let logits = try await context.cancellingOnDisconnect {
            try await service.rerank(query: query[0], texts: texts, truncate: truncate)
        }
        return try InferResponse(
            model: service, id: infer.id,
            outputs: [
                .init(name: "logits", shape: [logits.count], values: logits),
                .init(name: "scores", shape: [logits.count], values: logits.map(SequenceClassifier.sigmoid)),
            ]
        ).encode(for: infer)
    }
}
