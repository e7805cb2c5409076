import Foundation
import Hummingbird
import MassRuntime
import MassTokenizers

/// Tokenization as a service, shaped like text-embeddings-inference (TEI): `POST /tokenize` (`inputs`: a text or
/// a list; `add_special_tokens`, default true) answers one list of tokens per input, each `{"id", "text",
/// "special", "start", "stop", "token"}` (`text` the input's characters the token covers — offsets in characters,
/// as the `tokenizers` library gives them, null for special tokens — and `token` the vocabulary piece);
/// `POST /decode` (`ids`: a list or a list of lists; `skip_special_tokens`, default true) answers one text per
/// list. Any served text model (embedding, classification, rerank) by `model`; without it, the one loaded.
/// Errors in TEI's envelope `{"error", "error_type"}`.
enum TokenizeRoutes {
    /// A list of ids or a list of lists.
    enum IdLists: Decodable {
        case one([Int])
        case many([[Int]])

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let ids = try? container.decode([Int].self) {
                self = .one(ids)
            } else if let lists = try? container.decode([[Int]].self) {
                self = .many(lists)
            } else {
                throw RuntimeError(
                    .invalidInput, "'ids' must be a list of token ids or a list of such lists", param: "ids")
            }
        }
    }

    struct TokenizeRequest: Decodable {
        let model: String?
        let inputs: TextOrTexts
        let addSpecialTokens: Bool?

        enum CodingKeys: String, CodingKey {
            case model, inputs
            case addSpecialTokens = "add_special_tokens"
        }
    }

    struct DecodeRequest: Decodable {
        let model: String?
        let ids: IdLists
        let skipSpecialTokens: Bool?

        enum CodingKeys: String, CodingKey {
            case model, ids
            case skipSpecialTokens = "skip_special_tokens"
        }
    }

    static func add(to router: Router<MassRequestContext>, state: ServerState) {
        router.post("/tokenize") { request, _ in
            RequestLabels.inference("/tokenize")
            let body = try await JSONBody.decode(TokenizeRequest.self, request, limit: state.bodyLimit)
            let service = try resolve(body.model, state: state)
            let texts = body.inputs.texts
            try state.check(texts, limits: service.config, param: "inputs")
            let tokenizer = service.tokenizer
            let special = body.addSpecialTokens ?? true
            let lists: [[[String: Any]]] = texts.map { text in
                let scalars = Array(text.unicodeScalars)
                let e = tokenizer.encode(text, offsets: true, addSpecialTokens: special)
                return e.ids.indices.map { i in
                    let isSpecial = tokenizer.isSpecial(e.ids[i])
                    let span = e.offsets?[i] ?? [0, 0]
                    var covered = String.UnicodeScalarView()
                    covered.append(contentsOf: scalars[span[0]..<span[1]])
                    return [
                        "id": Int(e.ids[i]), "token": e.tokens[i], "special": isSpecial,
                        "text": isSpecial ? e.tokens[i] : String(covered),
                        "start": isSpecial ? NSNull() : span[0] as Any, "stop": isSpecial ? NSNull() : span[1] as Any,
                    ]
                }
            }
            return JSONResponse.make(lists)
        }
        router.post("/decode") { request, _ in
            RequestLabels.inference("/decode")
            let body = try await JSONBody.decode(DecodeRequest.self, request, limit: state.bodyLimit)
            let service = try resolve(body.model, state: state)
            let lists: [[Int]]
            switch body.ids {
            case .one(let ids): lists = [ids]
            case .many(let many): lists = many
            }
            guard !lists.isEmpty, !lists.contains(where: \.isEmpty) else {
                throw RuntimeError(.invalidInput, "'ids' is empty (or holds an empty list)", param: "ids")
            }
            guard lists.count <= service.config.maxInputs else {
                throw RuntimeError(
                    .invalidInput, "\(lists.count) lists; this model takes at most \(service.config.maxInputs)",
                    param: "ids")
            }
            let texts = try lists.map { ids in
                guard let bad = ids.first(where: { $0 < 0 || $0 > Int(Int32.max) }) else {
                    do {
                        return try service.tokenizer.decode(
                            ids.map { Int32($0) }, skipSpecialTokens: body.skipSpecialTokens ?? true)
                    } catch let error as TokenizerError {
                        throw RuntimeError(.invalidInput, error.message, param: "ids")
                    }
                }
                throw RuntimeError(.invalidInput, "token id \(bad) is outside the vocabulary", param: "ids")
            }
            return JSONResponse.make(texts)
        }
    }

    /// The named model if it has a tokenizer, or the one loaded model with a tokenizer when no name is given.
    private static func resolve(_ name: String?, state: ServerState) throws -> any TokenizingServing {
        if let name {
            try RequestLabels.model(name)
            let model = try state.manager.model(name)
            guard let service = model as? any TokenizingServing else {
                throw RuntimeError(
                    .wrongTask, "model '\(name)' (\(model.task.rawValue)) has no tokenizer Mass runs", param: "model")
            }
            return service
        }
        let candidates = state.manager.readyNames.filter { (try? state.manager.model($0)) is any TokenizingServing }
        guard candidates.count == 1 else {
            throw RuntimeError(
                .invalidInput,
                candidates.isEmpty
                    ? "no model with a tokenizer is loaded"
                    : "several models with a tokenizer are loaded (\(candidates.joined(separator: ", "))); name one with 'model'",
                param: "model")
        }
        try RequestLabels.model(candidates[0])
        return try state.manager.model(candidates[0]) as! any TokenizingServing
    }
}
