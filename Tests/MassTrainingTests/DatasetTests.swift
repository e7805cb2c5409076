import Foundation
import MassTesting
import MassTraining
import Testing

/// Datasets are read exactly and refused with the file and line of the first problem, before any training.
@Suite final class DatasetTests {
    /// This test's scratch folder, removed when the test ends.
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mass-dataset-\(UUID())")

    init() throws { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) }

    deinit { try? FileManager.default.removeItem(at: dir) }

    func file(_ name: String, _ content: String) throws -> URL {
        try file(name, Data(content.utf8))
    }

    func file(_ name: String, _ bytes: Data) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try bytes.write(to: url)
        return url
    }

    func error(_ name: String, _ content: String, columns: TextDataset.Columns = .init(), labels: [String]? = nil)
        -> String?
    {
        do {
            _ = try TextDataset(contentsOf: try file(name, content), columns: columns, labels: labels)
            return nil
        } catch let e as DatasetError {
            return "\(e.line.map(String.init) ?? "-"): \(e.message)"
        } catch {
            return "unexpected \(error)"
        }
    }

    @Test func readsJSONLinesAndCSV() throws {
        let jsonl = try TextDataset(
            contentsOf: try file(
                "d.jsonl",
                #"{"text": "good film", "label": "fresh"}"# + "\n\n"
                    + #"{"text": "bad, \"really\"", "label": "rotten"}"# + "\n"))
        #expect(jsonl.labels == ["fresh", "rotten"])
        #expect(jsonl.examples.map(\.label) == [0, 1])
        #expect(jsonl.examples[1].text == #"bad, "really""#)
        let csv = try TextDataset(
            contentsOf: try file(
                "d.csv", "q,answer,label\r\n\"What, here?\",\"line one\nline two\",1\nwhy,\"say \"\"hi\"\"\",0\n"),
            columns: .init(text: "q", pair: "answer"))
        #expect(csv.labels == ["0", "1"])
        #expect(
            csv.examples == [
                .init(text: "What, here?", pair: "line one\nline two", label: 1),
                .init(text: "why", pair: #"say "hi""#, label: 0),
            ])
        // Integer labels keep their values; a given label list fixes names and order.
        let numbered = try TextDataset(contentsOf: try file("n.jsonl", #"{"text": "a", "label": 2}"#))
        #expect(numbered.labels == ["0", "1", "2"] && numbered.examples[0].label == 2)
        let fixed = try TextDataset(
            contentsOf: try file("f.jsonl", #"{"text": "a", "label": "pos"}"#), labels: ["neg", "pos"])
        #expect(fixed.examples[0].label == 1)
        // Keeping two of three categories: the others are skipped, even where their text is empty.
        let kept = try TextDataset(
            contentsOf: try file("k.csv", "category,text\nplot,\nfresh,good\nrotten,bad\nplot,story\n"),
            columns: .init(label: "category"), labels: ["fresh", "rotten"], skipOtherLabels: true)
        #expect(kept.examples == [.init(text: "good", label: 0), .init(text: "bad", label: 1)])
    }

    @Test func refusesBadRowsWithTheirLine() throws {
        let good = #"{"text": "fine", "label": "a"}"#
        #expect(error("d.jsonl", good + "\n" + #"{"label": "a"}"#) == "2: no 'text' column")
        #expect(error("d.jsonl", good + "\n" + #"{"text": "x"}"#) == "2: no 'label' column")
        #expect(error("d.jsonl", good + "\n" + #"{"text": "  ", "label": "a"}"#) == "2: 'text' is empty")
        #expect(error("d.jsonl", good + "\n" + #"{"text": 5, "label": "a"}"#) == "2: 'text' is not a string")
        #expect(error("d.jsonl", good + "\n{oops") == "2: is not a JSON object")
        #expect(
            error("d.jsonl", good + "\n" + #"{"text": "x", "label": true}"#)
                == "2: 'label' is not a label name or an integer")
        #expect(
            error("d.jsonl", good + "\n" + #"{"text": "x", "label": "b"}"#, labels: ["a"])
                == "2: unknown label 'b' (labels: a)")
        #expect(error("d.jsonl", "") == "-: has no rows")
        #expect(error("d.txt", good) == "-: unknown dataset format '.txt' (use .jsonl or .csv)")
        #expect(error("d.csv", "text,label\nfine,a\n\"open,b\n") == "3: a quoted field is not closed")
        #expect(error("d.csv", "text,label\nfine,a\nx,b,c\n") == "3: has 3 fields; the header has 2")
        #expect(error("d.csv", "text,label\nfine,\n") == "2: 'label' is not a label name or an integer")
        #expect(
            error("d.csv", "text,label\nfine,a\n", columns: .init(pair: "other")) == "2: no 'other' column")
        var bytes = Data("text,label\nfine,a\n".utf8)
        bytes += Data([0x62, 0xFF, 0x2C, 0x61, 0x0A])  // "b\xFF,a"
        let bad = try file("u.csv", bytes)
        do {
            _ = try TextDataset(contentsOf: bad)
            Issue.record("invalid UTF-8 was read")
        } catch { #expect(error.line == 3 && error.message == "is not valid UTF-8") }
        var lines = Data((good + "\n").utf8)
        lines += Data([0x7B, 0xC3, 0x28, 0x7D, 0x0A])
        let badLines = try file("u.jsonl", lines)
        do {
            _ = try TextDataset(contentsOf: badLines)
            Issue.record("invalid UTF-8 was read")
        } catch { #expect(error.line == 2 && error.message == "is not valid UTF-8") }
    }

    /// Gzip-compressed and plain IDX files (as Fashion-MNIST ships), and every malformed one.
    @Test func readsIDXImagesAndLabels() throws {
        let images = Data([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3] + (0..<12).map { UInt8($0 * 20) })
        let labels = Data([0, 0, 8, 1, 0, 0, 0, 2, 7, 3])
        let gzipped = try gzip(images)
        let dataset = try ImageDataset(
            idxImages: try file("images.idx3-ubyte.gz", gzipped), labels: try file("labels.idx1-ubyte", labels))
        #expect(dataset.count == 2 && dataset.height == 2 && dataset.width == 3 && dataset.channels == 1)
        #expect(dataset.labels == [7, 3])
        #expect(dataset.pixels[11] == Float(220) / 255)
        let (pixels, batchLabels) = dataset.batch([1])
        #expect(pixels.count == 6 && pixels[0] == Float(120) / 255 && batchLabels == [3])
        func refusal(_ images: Data, _ labels: Data, classes: Int = 10) -> String? {
            do {
                _ = try ImageDataset(
                    idxImages: try file("i.idx", images), labels: try file("l.idx", labels), classes: classes)
                return nil
            } catch let e as DatasetError { return e.message } catch { return "\(error)" }
        }
        #expect(refusal(Data([1, 2, 3, 4]), labels)?.contains("not an IDX file") == true)
        #expect(refusal(Data([0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0]), labels)?.contains("not unsigned bytes") == true)
        #expect(refusal(images.dropLast(), labels)?.contains("needs 12") == true)
        #expect(refusal(images, Data([0, 0, 8, 1, 0, 0, 0, 1, 7]))?.contains("[1] labels for 2 images") == true)
        #expect(refusal(images, labels, classes: 5)?.contains("label 7 is not below 5") == true)
        #expect(refusal(gzipped.dropLast(9), labels)?.contains("not a complete gzip stream") == true)
    }

    func gzip(_ data: Data) throws -> Data {
        let input = try file("plain", data)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/gzip")
        process.arguments = ["-kn", input.path]
        try process.run()
        process.waitUntilExit()
        return try Data(contentsOf: input.appendingPathExtension("gz"))
    }

    /// An image folder: a subfolder per class, every file decoded, resized and cropped before training; bad
    /// files and folders refused by name.
    @Test func readsAnImageFolderAndRefusesBadOnes() throws {
        let images = dir.appendingPathComponent("images")
        let manager = FileManager.default
        for (label, files) in [("cats", ["chelsea.png", "coffee.png"]), ("space", ["astronaut.png", "rocket.jpg"])] {
            try manager.createDirectory(at: images.appendingPathComponent(label), withIntermediateDirectories: true)
            for name in files {
                try manager.copyItem(
                    at: EfficientNetFixture.url(name), to: images.appendingPathComponent("\(label)/\(name)"))
            }
        }
        let rgb = try ImageDataset(folder: images, side: 32, channels: 3)
        #expect(rgb.count == 4 && rgb.labels == [0, 0, 1, 1] && rgb.classCount == 2)
        #expect(rgb.pixels.count == 4 * 32 * 32 * 3 && rgb.pixels.allSatisfy { $0 >= 0 && $0 <= 1 })
        let grey = try ImageDataset(folder: images, side: 32, channels: 1)
        #expect(grey.pixels.count == 4 * 32 * 32 && grey.channels == 1)
        var worst: Float = 0
        for p in 0..<(4 * 32 * 32) {
            let mean = (rgb.pixels[3 * p] + rgb.pixels[3 * p + 1] + rgb.pixels[3 * p + 2]) / 3
            worst = max(worst, abs(mean - grey.pixels[p]))
        }
        #expect(worst < 1e-6)
        // The labels' order, when given, is theirs.
        let reordered = try ImageDataset(folder: images, side: 32, channels: 3, labels: ["space", "cats"])
        let size = 32 * 32 * 3
        #expect(reordered.labels == [0, 0, 1, 1])
        #expect(Array(reordered.pixels[0..<size]) == Array(rgb.pixels[(2 * size)..<(3 * size)]))

        func refusal(_ labels: [String]? = nil) -> String {
            do {
                _ = try ImageDataset(folder: images, side: 32, channels: 3, labels: labels)
                return "accepted"
            } catch { return error.description }
        }
        #expect(refusal(["cats", "dogs"]).hasSuffix("images/space: is not one of the labels [\"cats\", \"dogs\"]"))
        try manager.createDirectory(at: images.appendingPathComponent("empty"), withIntermediateDirectories: true)
        #expect(refusal().hasSuffix("images/empty: has no images"), "\(refusal())")
        try manager.removeItem(at: images.appendingPathComponent("empty"))
        try Data("not an image at all".utf8).write(to: images.appendingPathComponent("cats/broken.png"))
        #expect(refusal().contains("images/cats/broken.png: is not a readable image"), "\(refusal())")
        // A truncated JPEG is unreadable too.
        try manager.removeItem(at: images.appendingPathComponent("cats/broken.png"))
        let jpeg = try Data(contentsOf: EfficientNetFixture.url("rocket.jpg"))
        try jpeg.prefix(jpeg.count / 3).write(to: images.appendingPathComponent("space/cut.jpg"))
        #expect(refusal().contains("images/space/cut.jpg: is not a readable image"), "\(refusal())")
    }
}
