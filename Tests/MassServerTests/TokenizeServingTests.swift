import Foundation
import MassTesting
import Testing

/// Tokenization as a service on the live binary, TEI's `/tokenize` and `/decode`, for a served BERT embedding
/// model and a served classifier side by side: ids and character offsets as the `tokenizers` library gives them
/// (goldens of Tests/MassTokenizersTests/Goldens/xlmr-unigram.json, "wordpiece"), decoding back to its text, and
/// clear errors for bad requests.
@Suite(.serialized) struct TokenizeServingTests {
    struct Golden: Decodable {
        struct Text: Decodable {
            let text: String
            let ids: [Int]
            let offsets: [[Int]]
            let decoded: String
        }
        let wordpiece: [Text]
    }

    func post(_ s: LiveServer, _ path: String, _ json: String) -> (Int, Any?) {
        let r = s.rawPost(path, body: Array(json.utf8))
        return (r.status, try? JSONSerialization.jsonObject(with: Data(r.body)))
    }

    func json(_ value: Any) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: value), as: UTF8.self)
    }

    @Test func tokenizeAndDecodeMatchTheReference() throws {
        let golden = try JSONDecoder().decode(
            Golden.self,
            from: Data(
                contentsOf: FixturePaths.packageRoot.appendingPathComponent(
                    "Tests/MassTokenizersTests/Goldens/xlmr-unigram.json")))
        let s = try LiveServer(
            massJSON: #"{"task": "text-embedding"}"#, model: "minilm",
            also: [("clf", #"{"task": "text-classification"}"#, TextHeadFixture.classifierDirectory)])
        defer { s.stop() }
        let cases = Array(golden.wordpiece.filter { !$0.text.isEmpty }.prefix(40))
        let (status, body) = post(
            s, "/tokenize", json(["model": "minilm", "inputs": cases.map(\.text)] as [String: Any]))
        #expect(status == 200, "\(String(describing: body))")
        let lists = try #require(body as? [[[String: Any]]])
        #expect(lists.count == cases.count)
        for (tokens, c) in zip(lists, cases) {
            #expect(tokens.map { $0["id"] as? Int } == c.ids, "\(c.text.debugDescription): ids")
            // Specials ([CLS], [SEP]) have null offsets; the rest are the reference's, and `text` is the input's
            // characters they cover.
            let scalars = Array(c.text.unicodeScalars)
            for (token, offsets) in zip(tokens, c.offsets) {
                if token["special"] as? Bool == true {
                    #expect(token["start"] is NSNull && token["stop"] is NSNull)
                    continue
                }
                let (start, stop) = (token["start"] as? Int ?? -1, token["stop"] as? Int ?? -1)
                #expect([start, stop] == offsets, "\(c.text.debugDescription)")
                var covered = String.UnicodeScalarView()
                covered.append(contentsOf: scalars[max(0, start)..<max(0, stop)])
                #expect(token["text"] as? String == String(covered))
            }
        }
        let (decodeStatus, decoded) = post(
            s, "/decode", json(["model": "minilm", "ids": cases.map(\.ids)] as [String: Any]))
        #expect(decodeStatus == 200)
        #expect(decoded as? [String] == cases.map(\.decoded))

        // The classifier's tokenizer by name; without special tokens, no [CLS]/[SEP].
        let (plainStatus, plain) = post(
            s, "/tokenize", #"{"model": "clf", "inputs": "Hello world", "add_special_tokens": false}"#)
        #expect(plainStatus == 200)
        let plainTokens = try #require((plain as? [[[String: Any]]])?.first)
        #expect(plainTokens.map { $0["token"] as? String } == ["hello", "world"])
        #expect(plainTokens.map { $0["start"] as? Int } == [0, 6])
        let (keptStatus, kept) = post(
            s, "/decode", #"{"model": "minilm", "ids": [101, 7592, 2088, 102], "skip_special_tokens": false}"#)
        #expect(keptStatus == 200 && kept as? [String] == ["[CLS] hello world [SEP]"])
    }

    @Test func badRequestsAreRefusedByName() throws {
        let s = try LiveServer(
            massJSON: #"{"task": "text-embedding"}"#, model: "minilm",
            also: [("clf", #"{"task": "text-classification"}"#, TextHeadFixture.classifierDirectory)])
        defer { s.stop() }
        func refused(_ path: String, _ body: String, _ status: Int, _ words: String) {
            let (got, reply) = post(s, path, body)
            let message = ((reply as? [String: Any])?["error"] as? String) ?? "\(String(describing: reply))"
            #expect(got == status && message.contains(words), "\(path) \(body): \(got) \(message)")
        }
        refused("/tokenize", #"{"inputs": "hi"}"#, 400, "several models with a tokenizer")
        refused("/tokenize", #"{"model": "minilm", "inputs": 7}"#, 400, "'inputs' must be a string")
        refused("/tokenize", #"{"model": "minilm", "inputs": []}"#, 400, "'inputs' is empty")
        refused("/tokenize", #"{"model": "nope", "inputs": "hi"}"#, 404, "nope")
        refused("/tokenize", #"{"model": "minilm", "inputs": "hi""#, 400, "JSON")
        refused("/decode", #"{"model": "minilm", "ids": "1 2"}"#, 400, "'ids' must be a list")
        refused("/decode", #"{"model": "minilm", "ids": []}"#, 400, "'ids' is empty")
        refused("/decode", #"{"model": "minilm", "ids": [101, 99999]}"#, 400, "99999")
        refused("/decode", #"{"model": "minilm", "ids": [-1]}"#, 400, "-1")
    }
}
