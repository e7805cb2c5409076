import Foundation

/// `fixtures/image/efficientnet.json`: golden logits, top-5 and preprocessing geometry from the reference
/// (Pillow decode and resize, PyTorch EfficientNet-Lite0).
public struct EfficientNetFixture: Decodable {
    public struct Top: Decodable {
        public let index: Int
        public let name: String
        public let prob: Double
        public let logit: Float
    }

    public struct Geometry: Decodable {
        public let resized_wh: [Int]
        public let crop_left_top: [Int]
    }

    public struct Image: Decodable {
        public let id: String
        public let file: String
        public let size_wh: [Int]
        public let geometry: Geometry
        public let crop224_file: String
        public let top5: [Top]
        public let logits: [Float]
    }

    public let images: [Image]

    public static func load() throws -> EfficientNetFixture {
        try JSONDecoder().decode(EfficientNetFixture.self, from: Data(contentsOf: url("efficientnet.json")))
    }

    public static func url(_ file: String) -> URL { FixturePaths.fixtures.appendingPathComponent("image/\(file)") }

    /// The default model's version folder (`make models` lays it out).
    public static var modelDirectory: URL { FixturePaths.models.appendingPathComponent("efficientnet-lite0/1") }

    public static var checkpoint: URL { modelDirectory.appendingPathComponent("efficientnet-lite0-57934424.pth") }
}
