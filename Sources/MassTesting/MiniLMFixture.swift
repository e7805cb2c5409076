import Foundation

/// `fixtures/text/minilm.json`: golden tokenization and embeddings from sentence-transformers.
public struct MiniLMFixture: Decodable {
    public struct Case: Decodable {
        public let id: String
        public let text: String
        public let input_ids: [Int32]
        public let tokens: [String]
        public let n_tokens: Int
        public let n_tokens_untruncated: Int
        public let truncated: Bool
        public let embedding: [Float]
    }

    public struct HiddenStates: Decodable {
        public let id: String
        public let input_ids: [Int32]
        public let last_hidden_state: [[Float]]
        public let all_hidden_states: Descriptor
    }

    public struct Descriptor: Decodable {
        public let file: String
        public let shape: [Int]
    }

    public let cases: [Case]
    public let hidden_states: [HiddenStates]

    public static func load() throws -> MiniLMFixture {
        let url = FixturePaths.fixtures.appendingPathComponent("text/minilm.json")
        return try JSONDecoder().decode(MiniLMFixture.self, from: Data(contentsOf: url))
    }

    /// The default model folder (`make models` lays it out); tests fail with this hint when it is missing.
    public static var modelDirectory: URL {
        FixturePaths.models.appendingPathComponent("all-MiniLM-L6-v2/1")
    }
}
