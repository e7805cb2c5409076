import Foundation
import MassModels
import MassTesting
import Testing

/// Broken model folders: each error names the file and the problem; none crashes.
@Suite struct ModelFolderErrorTests {
    /// A copy of the real model folder (weights linked, not copied) with `edit` applied.
    func folder(_ name: String, edit: (URL) throws -> Void) throws -> URL {
        let source = MiniLMFixture.modelDirectory
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mass-model-\(getpid())-\(name)")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(
            at: dir.appendingPathComponent("1_Pooling"), withIntermediateDirectories: true)
        for file in [
            "config.json", "tokenizer.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json",
        ] {
            try FileManager.default.copyItem(
                at: source.appendingPathComponent(file), to: dir.appendingPathComponent(file))
        }
        try FileManager.default.createSymbolicLink(
            at: dir.appendingPathComponent("model.safetensors"),
            withDestinationURL: source.appendingPathComponent("model.safetensors"))
        try edit(dir)
        return dir
    }

    func message(_ dir: URL) -> String? {
        do {
            _ = try SentenceEmbedder(directory: dir, encoder: BertModel.encoder)
            return nil
        } catch {
            return "\(error)"
        }
    }

    func rewriteJSON(_ url: URL, _ change: (inout [String: Any]) -> Void) throws {
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        change(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: url)
    }

    @Test func configMissingAKey() throws {
        let dir = try folder("nokey") {
            try rewriteJSON($0.appendingPathComponent("config.json")) { $0["hidden_size"] = nil }
        }
        let m = try #require(message(dir))
        #expect(m.contains("config.json") && m.contains("hidden_size"), "\(m)")
    }

    @Test func unsupportedActivation() throws {
        let dir = try folder("act") {
            try rewriteJSON($0.appendingPathComponent("config.json")) { $0["hidden_act"] = "relu" }
        }
        let m = try #require(message(dir))
        #expect(m.contains("hidden_act"), "\(m)")
    }

    @Test func unsupportedTokenizer() throws {
        let dir = try folder("tok") {
            try rewriteJSON($0.appendingPathComponent("tokenizer.json")) {
                $0["model"] = ["type": "Unigram", "vocab": []]
            }
        }
        let m = try #require(message(dir))
        #expect(m.contains("tokenizer.json") && m.contains("Unigram"), "\(m)")
    }

    @Test func unknownModule() throws {
        let dir = try folder("module") {
            try Data(#"[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Dense"}]"#.utf8)
                .write(to: $0.appendingPathComponent("modules.json"))
        }
        let m = try #require(message(dir))
        #expect(m.contains("modules.json") && m.contains("Dense"), "\(m)")
    }

    @Test func missingAndTruncatedWeights() throws {
        let missing = try folder("noweights") {
            try FileManager.default.removeItem(at: $0.appendingPathComponent("model.safetensors"))
        }
        let m = try #require(message(missing))
        #expect(m.contains("model.safetensors"), "\(m)")
        let truncated = try folder("truncated") { dir in
            let url = dir.appendingPathComponent("model.safetensors")
            let head = try FileHandle(
                forReadingFrom: MiniLMFixture.modelDirectory.appendingPathComponent("model.safetensors")
            )
            .read(upToCount: 20_000)!
            try FileManager.default.removeItem(at: url)
            try head.write(to: url)
        }
        let t = try #require(message(truncated))
        #expect(t.contains("model.safetensors") && t.contains("data_offsets"), "\(t)")
    }
}
