import Foundation

/// The small random-weight checkpoints of `Tests/MassModelsTests/Goldens/` (BertForSequenceClassification: a
/// 3-label classifier and a 1-label cross-encoder) and what transformers computed on them
/// (`scripts/make-text-head-goldens.py`). They ship with the repository: tests that use them need no download.
public struct TextHeadFixture: Decodable, Sendable {
    public struct Case: Decodable, Sendable {
        public let text: String
        public let query: String?
        public let maxLength: Int?
        public let ids: [Int32]
        public let typeIds: [Int32]
        public let logits: [Float]

        enum CodingKeys: String, CodingKey {
            case text, query, ids, logits
            case maxLength = "max_length"
            case typeIds = "type_ids"
        }
    }

    public let classification: [Case]
    public let rerank: [Case]
    public let truncation: [Case]

    public static var goldens: URL {
        FixturePaths.packageRoot.appendingPathComponent("Tests/MassModelsTests/Goldens")
    }
    public static var classifierDirectory: URL { goldens.appendingPathComponent("text-classifier") }
    public static var rerankerDirectory: URL { goldens.appendingPathComponent("reranker") }

    public static func load() throws -> TextHeadFixture {
        try JSONDecoder().decode(
            TextHeadFixture.self, from: Data(contentsOf: goldens.appendingPathComponent("text-heads.json")))
    }
}
