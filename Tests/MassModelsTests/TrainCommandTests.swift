import Foundation
import MassAutograd
import MassImage
import MassModels
import MassTensor
import MassTesting
import MassTraining
import MassWeights
import Testing

/// `mass train` on the built binary: a head on MiniLM's embeddings learns two topics from 80 short texts, writes
/// its weights (with lineage in the metadata), metrics, split and curves; bad configurations and datasets are
/// refused before anything runs, naming the key or the line.
@Suite struct TrainCommandTests {
    let runner = EmbedCommandTests()

    func folder() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mass-train-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// 40 texts about cooking and 40 about the weather, from templates.
    func topics() -> String {
        let dishes = ["soup", "bread", "pasta", "curry", "salad", "cake", "stew", "pie", "rice", "noodles"]
        let cooking = [
            "I cooked {} for dinner tonight.", "This {} needs more salt and garlic.",
            "Bake the {} for twenty minutes.", "My grandmother's {} recipe is the best.",
        ]
        let places = ["London", "Paris", "Oslo", "Madrid", "Tokyo", "Cairo", "Lima", "Delhi", "Rome", "Quebec"]
        let weather = [
            "Heavy rain is expected in {} tomorrow.", "It is sunny and warm in {} today.",
            "Snow and strong wind hit {} overnight.", "The forecast for {} says thunderstorms.",
        ]
        var lines: [String] = []
        for (i, dish) in dishes.enumerated() {
            for (j, t) in cooking.enumerated() {
                let text = t.replacingOccurrences(of: "{}", with: dish)
                lines.append(#"{"text": "\#(text)", "label": "cooking"}"#)
                let other = weather[j].replacingOccurrences(of: "{}", with: places[i])
                lines.append(#"{"text": "\#(other)", "label": "weather"}"#)
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    func config(_ dir: URL, dataset: String, head: String = #"{"epochs": 60, "learning_rate": 0.05}"#) throws -> String
    {
        let json = """
            {"task": "text-classification-head", "encoder": "\(MiniLMFixture.modelDirectory.path)",
             "dataset": {"path": "\(dataset)"}, "split": {"validation": 0.1, "test": 0.2, "seed": 7},
             "head": \(head), "output": "\(dir.appendingPathComponent("out").path)"}
            """
        let url = dir.appendingPathComponent("job.json")
        try Data(json.utf8).write(to: url)
        return url.path
    }

    @Test func trainsAHeadAndWritesEverything() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("topics.jsonl")
        try Data(topics().utf8).write(to: data)
        let result = try runner.run(["train", try config(dir, dataset: data.path)])
        #expect(result.status == 0, "\(result.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        // Topics this different are told apart on every held-out text.
        #expect(summary["test_accuracy"] as? Double == 1.0, "\(summary)")
        #expect(summary["test_examples"] as? Int == 16)
        #expect(result.stderr.contains("dataset: 80 examples, labels [\"cooking\", \"weather\"]; split 56 / 8 / 16"))
        #expect(result.stderr.contains("epoch 1/60"))
        let out = dir.appendingPathComponent("out")
        let split = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("split.json")))
                as? [String: Any])
        let parts = ["train", "validation", "test"].map { (split[$0] as? [Int]) ?? [] }
        #expect(parts.map(\.count) == [56, 8, 16] && Set(parts.flatMap { $0 }) == Set(0..<80))
        let metrics = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("metrics.json")))
                as? [String: Any])
        #expect((metrics["epochs"] as? [Any])?.isEmpty == false)
        // Each epoch's validation halves (4 texts each) average to its accuracy; the summary's crossed accuracy is
        // the one of those halves (ValidationHalves, tested with known values in TrainingToolsTests).
        let epochs = try #require(metrics["epochs"] as? [[String: Any]])
        let halves = epochs.compactMap { $0["validation_accuracy_halves"] as? [Double] }
        #expect(halves.count == epochs.count && halves.allSatisfy { $0.count == 2 })
        for (epoch, pair) in zip(epochs, halves) {
            #expect(abs((pair[0] + pair[1]) / 2 - ((epoch["validation_accuracy"] as? Double) ?? -1)) < 1e-12)
        }
        let reported = try #require(summary["crossed_validation_accuracy"] as? Double)
        #expect(
            reported == ValidationHalves.crossed(halves)
                && metrics["crossed_validation_accuracy"] as? Double == reported)
        #expect(metrics["dataset_sha256"] as? String == (try ExternalTools.sha256sum(data)))
        for chart in ["loss.svg", "accuracy.svg"] {
            let svg = try String(contentsOf: out.appendingPathComponent(chart), encoding: .utf8)
            #expect(svg.hasPrefix("<svg") && svg.contains("<polyline"), "\(chart)")
            // The same drawing as PNG, at twice the SVG's 640 x 400.
            let png = try Data(
                contentsOf: out.appendingPathComponent(chart.replacingOccurrences(of: ".svg", with: ".png")))
            #expect(
                png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47])
                    && png.subdata(in: 16..<24) == Data([0, 0, 5, 0, 0, 0, 3, 32]))
        }
        let head = try Data(contentsOf: out.appendingPathComponent("model/head.safetensors"))
        let headerLength = Int(head.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = try #require(
            try JSONSerialization.jsonObject(with: head.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
        #expect((header["out.weight"] as? [String: Any])?["shape"] as? [Int] == [2, 384])
        let metadata = try #require(header["__metadata__"] as? [String: String])
        #expect(metadata["mass.labels"] == #"["cooking","weather"]"#)
        #expect(
            try TrainedHead.labels(contentsOf: out.appendingPathComponent("model/head.safetensors")) == [
                "cooking", "weather",
            ])
        #expect(metadata["mass.dataset_sha256"] == (try ExternalTools.sha256sum(data)))
        #expect(metadata["mass.head_input"] == "embedding")
        // The model folder is a text classifier: the encoder's files and the head; new texts land on their topic.
        let classified = try runner.run([
            "classify-text", "--model", out.appendingPathComponent("model").path, "--top-k", "1",
            "Heavy snow is falling in Berlin tonight.", "Fry the onions in butter until golden.",
        ])
        #expect(classified.status == 0, "\(classified.stderr)")
        let tops = String(decoding: classified.stdout, as: UTF8.self).split(separator: "\n").map { line in
            ((try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["labels"] as? [[String: Any]])?
                .first?["label"] as? String
        }
        #expect(tops == ["weather", "cooking"])
    }

    /// The encoder itself fine-tuned (two epochs): it still tells the topics apart, and its folder serves.
    @Test func fineTunesTheEncoder() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("topics.jsonl")
        try Data(topics().utf8).write(to: data)
        let job = try config(dir, dataset: data.path)
        var json = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: job))) as? [String: Any])
        json["task"] = "text-classification-finetune"
        json["finetune"] = ["epochs": 2, "batch_size": 16, "learning_rate": 1e-4, "dropout": 0.0]
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: job))
        let result = try runner.run(["train", job, "--threads", "2"])
        #expect(result.status == 0, "\(result.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        #expect(summary["test_accuracy"] as? Double == 1.0, "\(summary)")
        #expect(result.stderr.contains("epoch 2 done"))
        let model = dir.appendingPathComponent("out/model")
        for file in ["model.safetensors", "head.safetensors", "tokenizer.json", "config.json", "modules.json"] {
            #expect(FileManager.default.fileExists(atPath: model.appendingPathComponent(file).path), "\(file)")
        }
        let embedded = try runner.run(["embed", "--model", model.path, "Snow fell in Oslo."])
        #expect(embedded.status == 0, "\(embedded.stderr)")
    }

    /// A fine-tuning run killed (SIGKILL) after a checkpoint, then run again with --resume, ends with exactly the
    /// weights of a run that was never interrupted.
    @Test func resumesAKilledRunExactly() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("topics.jsonl")
        try Data(topics().utf8).write(to: data)
        let job = try config(dir, dataset: data.path)
        var json = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: job))) as? [String: Any])
        json["task"] = "text-classification-finetune"
        json["finetune"] = [
            "epochs": 2, "batch_size": 8, "learning_rate": 1e-4, "dropout": 0.1, "accumulate": 2,
            "checkpoint_every": 1,
        ]
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: job))
        let whole = try runner.run(["train", job, "--threads", "2", "--output", dir.appendingPathComponent("a").path])
        #expect(whole.status == 0, "\(whole.stderr)")

        let b = dir.appendingPathComponent("b")
        let process = Process()
        process.executableURL = EmbedCommandTests.binary
        process.arguments = ["train", job, "--threads", "2", "--output", b.path]
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // 56 training texts in batches of 8, two per step: 4 steps an epoch. Kill it in the first epoch's middle.
        let latest = b.appendingPathComponent("checkpoints/latest")
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, process.isRunning {
            if let name = try? String(contentsOf: latest, encoding: .utf8), name.hasPrefix("step-2-") { break }
            Thread.sleep(forTimeInterval: 0.01)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        let checkpoint = try String(contentsOf: latest, encoding: .utf8)
        #expect(checkpoint.hasPrefix("step-2-"), "\(checkpoint)")
        #expect(!FileManager.default.fileExists(atPath: b.appendingPathComponent("model").path))

        let resumed = try runner.run(["train", job, "--threads", "2", "--output", b.path, "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resumed at step 2 of 8"), "\(resumed.stderr)")
        for file in ["model/model.safetensors", "model/head.safetensors"] {
            let first = try Data(contentsOf: dir.appendingPathComponent("a").appendingPathComponent(file))
            let second = try Data(contentsOf: b.appendingPathComponent(file))
            #expect(first == second, "\(file) differs after resuming")
        }
        let metrics = { (run: String) in
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: dir.appendingPathComponent(run).appendingPathComponent("metrics.json")))
                as? [String: Any]
        }
        #expect(
            (try metrics("a"))?["epochs"] as? [[String: Double]] == (try metrics("b"))?["epochs"] as? [[String: Double]]
        )
    }

    /// Writes an MNIST-style folder (gzip IDX) of 12×12 images: class 0 a horizontal bar, class 1 a vertical
    /// one, at random rows and columns, with noise.
    static func writeBars(_ folder: URL, train: Int, test: Int, seed: UInt64 = 1) throws {
        var generator = SeededGenerator(seed: seed)
        func part(_ prefix: String, _ count: Int) throws {
            func bigEndian(_ n: Int) -> [UInt8] { (0..<4).map { UInt8((n >> (24 - 8 * $0)) & 255) } }
            var images: [UInt8] = [0, 0, 8, 3] + bigEndian(count) + bigEndian(12) + bigEndian(12)
            var labels: [UInt8] = [0, 0, 8, 1] + bigEndian(count)
            for i in 0..<count {
                let label = i % 2
                let at = Int.random(in: 1..<11, using: &generator)
                for y in 0..<12 {
                    for x in 0..<12 {
                        let on = label == 0 ? y == at : x == at
                        images.append(on ? 255 : UInt8.random(in: 0..<60, using: &generator))
                    }
                }
                labels.append(UInt8(label))
            }
            for (name, bytes) in [("\(prefix)-images-idx3-ubyte", images), ("\(prefix)-labels-idx1-ubyte", labels)] {
                let url = folder.appendingPathComponent(name)
                try Data(bytes).write(to: url)
                let gzip = Process()
                gzip.executableURL = URL(fileURLWithPath: "/usr/bin/gzip")
                gzip.arguments = ["-f", url.path]
                try gzip.run()
                gzip.waitUntilExit()
            }
        }
        try part("train", train)
        try part("t10k", test)
    }

    /// A ConvNet from scratch on images: it tells horizontal bars from vertical ones on every test image.
    @Test func trainsAConvNetOnImages() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.writeBars(dir, train: 400, test: 100)
        let config = dir.appendingPathComponent("cnn.json")
        try Data(
            #"""
            {"task": "image-classification-cnn", "dataset": {"path": "\#(dir.path)", "labels": ["horizontal", "vertical"]},
             "images": {"epochs": 3, "batch_size": 32, "learning_rate": 0.003},
             "output": "\#(dir.appendingPathComponent("out").path)"}
            """#.utf8
        ).write(to: config)
        let result = try runner.run(["train", config.path, "--threads", "2"])
        #expect(result.status == 0, "\(result.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        #expect(summary["test_accuracy"] as? Double == 1.0, "\(summary) \(result.stderr)")
        #expect(summary["test_examples"] as? Int == 100)
        #expect(result.stderr.contains("dataset: 400 training images (360 / 40 train / validation), 100 test, 12×12"))
        let weights = dir.appendingPathComponent("out/model/convnet.safetensors")
        #expect(FileManager.default.fileExists(atPath: weights.path))
        // A class the labels file does not have is refused with its entry.
        let bad = dir.appendingPathComponent("bad")
        try FileManager.default.createDirectory(at: bad, withIntermediateDirectories: true)
        try Self.writeBars(bad, train: 40, test: 10)
        let labels = bad.appendingPathComponent("train-labels-idx1-ubyte")
        try Data([0, 0, 8, 1, 0, 0, 0, 40] + (0..<40).map { $0 == 6 ? 12 : UInt8($0 % 2) }).write(to: labels)
        try FileManager.default.removeItem(at: bad.appendingPathComponent("train-labels-idx1-ubyte.gz"))
        try FileManager.default.moveItem(at: labels, to: bad.appendingPathComponent("train-labels-idx1-ubyte.gz"))
        let refused = try runner.run(
            [
                "train", config.path, "--output", dir.appendingPathComponent("never").path,
            ].map { $0 == config.path ? try Self.rewrite(config, path: bad.path) : $0 })
        #expect(refused.status != 0)
        #expect(
            refused.stderr.contains("train-labels-idx1-ubyte.gz:7: label 12 is not below 10 classes"),
            "\(refused.stderr)")
        // A quick run on the first 100 / 20 of the shuffled train / validation parts; the test part stays whole.
        let small = dir.appendingPathComponent("small.json")
        try Data(
            #"""
            {"task": "image-classification-cnn",
             "dataset": {"path": "\#(dir.path)", "labels": ["horizontal", "vertical"], "max_train": 100, "max_validation": 20},
             "images": {"epochs": 1}, "output": "\#(dir.appendingPathComponent("small").path)"}
            """#.utf8
        ).write(to: small)
        let quick = try runner.run(["train", small.path, "--threads", "2"])
        #expect(quick.status == 0, "\(quick.stderr)")
        #expect(quick.stderr.contains("dataset: 120 training images (100 / 20 train / validation), 100 test, 12×12"))
        let split = try #require(
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: dir.appendingPathComponent("small/split.json"))) as? [String: Any])
        #expect((split["train"] as? [Int])?.count == 100 && (split["validation"] as? [Int])?.count == 20)
        try Data(
            String(decoding: try Data(contentsOf: small), as: UTF8.self).replacingOccurrences(of: "100,", with: "0,")
                .utf8
        )
        .write(to: small)
        let zero = try runner.run(["train", small.path])
        #expect(zero.status != 0 && zero.stderr.contains("'dataset.max_train' must be positive"), "\(zero.stderr)")
    }

    /// A head on EfficientNet-Lite0's features tells the bars apart; the model folder is an image classifier
    /// whose logits are the head's on the network's features, with the head's labels.
    @Test func trainsAHeadOnEfficientNetFeatures() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.writeBars(dir, train: 80, test: 20)
        let config = dir.appendingPathComponent("head.json")
        try Data(
            #"""
            {"task": "image-classification-head", "encoder": "\#(EfficientNetFixture.modelDirectory.path)",
             "dataset": {"path": "\#(dir.path)", "labels": ["horizontal", "vertical"]},
             "head": {"epochs": 100, "learning_rate": 0.01, "batch_size": 16},
             "output": "\#(dir.appendingPathComponent("out").path)"}
            """#.utf8
        ).write(to: config)
        let result = try runner.run(["train", config.path, "--threads", "2"])
        #expect(result.status == 0, "\(result.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        #expect(summary["test_accuracy"] as? Double == 1.0, "\(summary) \(result.stderr)")
        #expect(summary["test_examples"] as? Int == 20)
        #expect(result.stderr.contains("features: 100 images through"), "\(result.stderr)")
        let model = dir.appendingPathComponent("out/model")
        let served = try ImageClassifier(directory: model)
        #expect(served.labels == ["horizontal", "vertical"])
        #expect(served.trainedHead != nil)
        // The served logits are the saved head's weights applied to the features, for a bar of each kind: out.weight
        // [2, 1280] · features + out.bias, computed here from the file.
        let file = try SafeTensorsFile(path: model.appendingPathComponent("head.safetensors").path)
        let weight = try file.tensor("out.weight").toFloat32()
        let bias = try file.tensor("out.bias").toFloat32().array
        #expect(weight.shape == [2, 1280])
        var images: [ImageClassifier.Image] = []
        for vertical in [false, true] {
            let pixels = (0..<144).flatMap { p -> [UInt8] in
                let on = vertical ? p % 12 == 5 : p / 12 == 5
                return Array(repeating: on ? 255 : 10, count: 3)
            }
            images.append(.pixels(RGBImage(width: 12, height: 12, pixels: pixels)))
        }
        let pool = ComputePool(threads: 2)
        let logits = try served.logits(images, workspace: EfficientNetWorkspace(), pool: pool).map { try $0.get() }
        let features = try served.features(images, workspace: EfficientNetWorkspace(), pool: pool).map { try $0.get() }
        #expect(features.allSatisfy { $0.count == 1280 })
        for (row, feature) in zip(logits, features) {
            let expected = (0..<2).map { c in
                bias[c] + (0..<1280).reduce(Float(0)) { $0 + weight.array[c * 1280 + $1] * feature[$1] }
            }
            let difference = Comparison.maxAbsDiff(row, expected)
            // Measured: 3.8e-6 (the same products summed in another order).
            #expect(difference < 2e-5, "served vs recomputed logits: \(difference)")
        }
        #expect(logits[0][0] > logits[0][1] && logits[1][1] > logits[1][0], "\(logits)")
        // The same image through a resumed run's cached features: nothing is recomputed.
        let resumed = try runner.run(["train", config.path, "--threads", "2", "--resume"])
        #expect(resumed.status == 0 && resumed.stderr.contains("features: 100 images from the checkpoint"))
    }

    /// Distillation on unlabelled text (a .txt file and a CSV column): the student keeps three of MiniLM's six
    /// layers, gets closer to the teacher, and is saved as a three-layer embedding model, measured as served.
    @Test func distillsAStudentFromUnlabelledText() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let texts = try topics().split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])["text"] as! String
        }
        try Data(texts.prefix(60).joined(separator: "\n").utf8).write(to: dir.appendingPathComponent("a.txt"))
        try Data(
            ("id,Text\n" + texts.dropFirst(60).enumerated().map { "\($0),\"\($1)\"" }.joined(separator: "\n")).utf8
        )
        .write(to: dir.appendingPathComponent("b.csv"))
        func write(_ distill: String, dataset: String? = nil) throws -> String {
            let url = dir.appendingPathComponent("distill.json")
            let data =
                dataset
                ?? #"{"path": "\#(dir.path)/a.txt", "more": [{"path": "\#(dir.path)/b.csv", "text": "Text"}]}"#
            try Data(
                #"""
                {"task": "text-embedding-distill", "encoder": "\#(MiniLMFixture.modelDirectory.path)",
                 "dataset": \#(data), "split": {"validation": 0.2, "test": 0.2, "seed": 1},
                 "distill": \#(distill), "output": "\#(dir.appendingPathComponent("out").path)"}
                """#.utf8
            ).write(to: url)
            return url.path
        }
        let result = try runner.run([
            "train", try write(#"{"layers": [0, 4, 5], "epochs": 2, "batch_size": 8, "warmup": 0}"#), "--threads", "2",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("dataset: 80 texts from 2 file(s); split 48 / 16 / 16"), "\(result.stderr)")
        let metrics = try #require(
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: dir.appendingPathComponent("out/metrics.json"))) as? [String: Any])
        #expect(metrics["metric"] as? String == "cosine")
        #expect(metrics["student_layers"] as? [Int] == [0, 4, 5])
        let before = try #require(metrics["validation_cosine_before_training"] as? Double)
        let after = try #require(metrics["validation_cosine"] as? Double)
        let served = try #require(metrics["test_cosine"] as? Double)
        // Measured: 0.809 before, 0.946 after two epochs; the served student on the test texts 0.946.
        #expect(after > before + 0.08, "\(metrics)")
        #expect(served > before && served <= 1, "\(metrics)")
        let config = try #require(
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: dir.appendingPathComponent("out/model/config.json"))) as? [String: Any])
        #expect(config["num_hidden_layers"] as? Int == 3)
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/cosine.svg").path))

        // Continued from that student on more text: the 'train_only' texts join the training part only (one of
        // them is a test text: left out), and so do variants of the split's training texts ('augment'), so the
        // validation part is the first run's, where the student starts exactly where it ended.
        let first = dir.appendingPathComponent("first")
        try FileManager.default.moveItem(at: dir.appendingPathComponent("out/model"), to: first)
        let split = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("out/split.json")))
                as? [String: Any])
        let heldOut = texts[try #require((split["test"] as? [Int])?.first)]
        try Data(([heldOut] + texts.prefix(20).map { "More about \($0.lowercased())" }).joined(separator: "\n").utf8)
            .write(to: dir.appendingPathComponent("extra.txt"))
        let more =
            #"{"path": "\#(dir.path)/a.txt", "more": [{"path": "\#(dir.path)/b.csv", "text": "Text"}], "train_only": [{"path": "\#(dir.path)/extra.txt"}]}"#
        try FileManager.default.removeItem(at: dir.appendingPathComponent("out"))
        let continued = try runner.run([
            "train",
            try write(
                #"{"from": "\#(first.path)", "epochs": 1, "batch_size": 8, "augment": {"copies": 2, "drop": 0.2}}"#,
                dataset: more),
            "--threads", "2",
        ])
        #expect(continued.status == 0, "\(continued.stderr)")
        #expect(continued.stderr.contains("split 48 / 16 / 16"), "\(continued.stderr)")
        #expect(
            continued.stderr.contains(
                "dataset: 20 texts from 1 'train_only' file(s) join the training part (1 left out: held out or excluded)"
            ),
            "\(continued.stderr)")
        #expect(continued.stderr.contains("student: the teacher's layers [0, 4, 5] of 6, continued from"))
        let variants = TextAugmentation(copies: 2, crop: 0.5, drop: 0.2).variants(
            of: try #require(split["train"] as? [Int]).map { texts[$0] }, seed: 1)
        #expect(variants.count > 48, "\(variants)")
        #expect(
            continued.stderr.contains(
                "dataset: \(variants.count) variants of the 48 training texts join the training part (augment: 2 per text, crop 0.5, drop 0.2; 0 left out: held out or excluded)"
            ),
            "\(continued.stderr)")
        let again = try #require(
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: dir.appendingPathComponent("out/metrics.json"))) as? [String: Any])
        #expect((again["examples"] as? [String: Int])?["train"] == 68 + variants.count, "\(again)")
        let start = try #require(again["validation_cosine_before_training"] as? Double)
        // The saved student, reloaded, on the same validation texts (the best epoch's evaluation, recomputed).
        #expect(abs(start - after) < 1e-4, "continued from \(start), the first run ended at \(after)")

        // Refused before anything runs.
        for (distill, dataset, message) in [
            (#"{"layers": [2, 1]}"#, nil, "'layers' must be teacher layer numbers, strictly increasing"),
            (#"{"layers": [1, 6]}"#, nil, "the teacher has layers 0 to 5"),
            (#"{"max_length": 600}"#, nil, "'max_length' 600 is more than the encoder's 512 positions"),
            (
                "{}", #"{"path": "\#(dir.path)/a.txt", "exclude": [{"path": "\#(dir.path)/a.txt"}]}"#,
                "0 texts are too few for a training and a validation part"
            ),
            ("{}", #"{"path": "\#(dir.path)/b.csv"}"#, "b.csv:2: no 'text' column"),
            ("{}", #"{"path": "\#(dir.path)/a.txt", "more": [{"path": ""}]}"#, "'dataset.more[0].path' is empty"),
            (
                "{}", #"{"path": "\#(dir.path)/a.txt", "train_only": [{"path": ""}]}"#,
                "'dataset.train_only[0].path' is empty"
            ),
            (
                #"{"from": "\#(MiniLMFixture.modelDirectory.path)"}"#, nil,
                "is not a student of a 6-layer teacher"
            ),
            (
                #"{"from": "\#(first.path)", "layers": [0, 2, 5]}"#, nil,
                "'layers' [0, 2, 5], but 'from' \(first.path) holds the teacher's layers [0, 4, 5]"
            ),
            (#"{"from": "\#(dir.path)/nowhere"}"#, nil, "'from' \(dir.path)/nowhere"),
            (#"{"augment": {"copies": 0}}"#, nil, "'augment.copies' must be from 1 to 10"),
        ] {
            try? FileManager.default.removeItem(at: dir.appendingPathComponent("out"))
            let refused = try runner.run(["train", try write(distill, dataset: dataset)])
            #expect(refused.status != 0)
            #expect(refused.stderr.contains(message), "\(refused.stderr)")
        }
        var invalid = Data("fine\nalso fine\n".utf8)
        invalid.append(contentsOf: [0xFF, 0xFE, 0x0A])
        try invalid.write(to: dir.appendingPathComponent("c.txt"))
        let refused = try runner.run(["train", try write("{}", dataset: #"{"path": "\#(dir.path)/c.txt"}"#)])
        #expect(refused.stderr.contains("c.txt:3: is not valid UTF-8"), "\(refused.stderr)")
    }

    /// `config` with its dataset path replaced, written beside it.
    static func rewrite(_ config: URL, path: String) throws -> String {
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: config)) as? [String: Any])
        json["dataset"] = ["path": path]
        let url = config.deletingLastPathComponent().appendingPathComponent("rewritten.json")
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        return url.path
    }

    @Test func refusesBadJobsBeforeRunning() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("topics.jsonl")
        try Data(topics().utf8).write(to: data)
        func failure(_ config: String) throws -> String {
            let result = try runner.run(["train", config])
            #expect(result.status != 0)
            #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("out").path))
            return result.stderr
        }
        let broken = dir.appendingPathComponent("broken.jsonl")
        try Data((topics() + #"{"text": "", "label": "cooking"}"# + "\n").utf8).write(to: broken)
        #expect(try failure(try config(dir, dataset: broken.path)).contains("broken.jsonl:81: 'text' is empty"))
        let unknown = dir.appendingPathComponent("unknown.csv")
        try Data("text,label\nfine,a\n".utf8).write(to: unknown)
        #expect(try failure(try config(dir, dataset: unknown.path)).contains("needs at least two labels"))
        #expect(
            try failure(try config(dir, dataset: data.path, head: #"{"learning_rate": -1}"#)).contains(
                "'learning_rate' must be positive"))
        #expect(
            try failure(try config(dir, dataset: data.path, head: #"{"monitor": "test"}"#)).contains("'monitor'"))
        // Validation 0.1 and test 0.2 leave eight validation blocks: folds 0 to 7.
        let folded = try config(dir, dataset: data.path)
        try Data(
            String(decoding: try Data(contentsOf: URL(fileURLWithPath: folded)), as: UTF8.self)
                .replacingOccurrences(of: #""seed": 7}"#, with: #""seed": 7, "fold": 8}"#).utf8
        ).write(to: URL(fileURLWithPath: folded))
        #expect(try failure(folded).contains("'split.fold' must be from 0 to 7"))
        let missing = dir.appendingPathComponent("missing.json")
        try Data(#"{"task": "text-classification-head", "dataset": {"path": "x"}, "output": "o"}"#.utf8).write(
            to: missing)
        #expect(try failure(missing.path).contains("missing 'encoder'"))
        let wrongTask = dir.appendingPathComponent("task.json")
        try Data(#"{"task": "dance", "encoder": "e", "dataset": {"path": "x"}, "output": "o"}"#.utf8).write(
            to: wrongTask)
        #expect(try failure(wrongTask.path).contains("task 'dance' is unknown"))
        #expect(try failure(dir.appendingPathComponent("nowhere.json").path).contains("cannot read"))
    }
}
