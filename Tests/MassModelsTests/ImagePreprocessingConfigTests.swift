import Foundation
import MassImage
import MassModels
import MassTesting
import Testing

/// An image model folder's `preprocessing.json`: read into the classifier's preprocessing, refused by name when
/// the network cannot take it.
@Suite struct ImagePreprocessingConfigTests {
    func folder(_ json: String?) throws -> URL {
        let source = EfficientNetFixture.modelDirectory
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "mass-pre-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for file in ["efficientnet-lite0-57934424.pth", "labels.txt"] {
            try FileManager.default.createSymbolicLink(
                at: dir.appendingPathComponent(file), withDestinationURL: source.appendingPathComponent(file))
        }
        if let json { try Data(json.utf8).write(to: dir.appendingPathComponent("preprocessing.json")) }
        return dir
    }

    @Test func readsTheFolderPreprocessing() throws {
        let plain = try ImageClassifier(directory: try folder(nil), onednn: false)
        #expect(plain.preprocessing == ImagePreprocessing())
        let custom = try ImageClassifier(
            directory: try folder(#"{"resize": 288, "mean": 127.5, "std": 127.5}"#), onednn: false)
        #expect(custom.preprocessing.resize == 288)
        #expect(custom.preprocessing.crop == 224)
        #expect(custom.preprocessing.mean == 127.5 && custom.preprocessing.std == 127.5)
    }

    @Test func refusesWhatTheNetworkCannotTake() throws {
        for (json, text) in [
            (#"{"crop": 2000}"#, "'crop' is 2000; the network takes 32 to 1024"),
            (#"{"resize": 100}"#, "'resize' must be from 'crop' (224) to 4096"),
            (#"{"std": 0}"#, "'std' must be a positive number"),
            (#"{"scale": 2}"#, "unknown key 'scale'"),
            (#"{"mean": "x"}"#, "'mean' should be of type"),
        ] {
            let error = caught(ModelError.self) { _ = try ImageClassifier(directory: try folder(json), onednn: false) }
            #expect(error?.message.contains(text) == true, "\(json): \(error?.message ?? "no error")")
        }
    }
}
