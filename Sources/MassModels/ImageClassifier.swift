public import Foundation
public import MassImage
public import MassTensor
import MassWeights

/// An image classification model folder: a PyTorch checkpoint (`*.pth` or `*.pt`, legacy or zip) of
/// EfficientNet-Lite0 (or the `model.safetensors` with int8 convolutions `mass compress` writes) and `labels.txt`
/// (one class name per line, in logit order); or, with a `head.safetensors` `mass train` wrote beside the
/// checkpoint, the network's pooled features through that head instead of its own classifier (the head names the
/// labels). Preprocessing is the one the
/// reference results were recorded with (`ImagePreprocessing`: shorter side 256, centre crop 224,
/// `(pixel − 127) / 128`).
public final class ImageClassifier: TaskModel {
    public struct Prediction: Sendable, Equatable {
        public let index: Int
        public let label: String
        public let score: Float
    }

    public let directory: URL
    public let network: EfficientNetLite
    public let labels: [String]
    /// A head trained on the network's features (`head.safetensors`), used in place of its classifier.
    public let trainedHead: TrainedHead?
    /// From the folder's optional `preprocessing.json` (`resize`, `crop`, `mean`, `std`); the reference values
    /// without it.
    public let preprocessing: ImagePreprocessing
    /// Floats of one preprocessed image, NCHW [3, side, side].
    public var inputSize: Int { 3 * inputSide * inputSide }
    /// The side of the square input the network takes (224 for Lite0; `preprocessing.json`'s `crop`).
    public var inputSide: Int { network.inputSize }

    /// The folder's int8 calibration (`mass compress --int8 --calibration IMAGES` writes it): the largest
    /// |activation| of the input and of every convolution, and how many images gave them.
    public struct Int8Calibration: Codable, Sendable {
        public var ranges: [Float]
        public var images: Int
        public static let file = "int8-calibration.json"

        public init(ranges: [Float], images: Int) {
            self.ranges = ranges
            self.images = images
        }
    }

    /// `onednn`: as `EfficientNetLite.init(weights:onednn:)` (default: unless `MASS_ONEDNN=0`). A folder with
    /// `int8-calibration.json` runs in int8 whatever `precision` asks; `precision` int8 needs that file.
    public init(
        directory: URL, precision: Linear.Precision = .float32,
        onednn: Bool = ProcessInfo.processInfo.environment["MASS_ONEDNN"] != "0"
    ) throws {
        self.directory = directory
        let items = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let checkpoints = items.filter { $0.hasSuffix(".pth") || $0.hasSuffix(".pt") }.sorted()
        let compressed = items.contains("model.safetensors")
        guard checkpoints.count + (compressed ? 1 : 0) == 1 else {
            throw checkpoints.isEmpty
                ? ModelError(
                    .missingFile,
                    "\(directory.path) holds no PyTorch checkpoint (*.pth or *.pt) nor model.safetensors")
                : ModelError(
                    .badConfig,
                    "\(directory.path) holds several checkpoints (\((checkpoints + (compressed ? ["model.safetensors"] : [])).joined(separator: ", "))); keep one"
                )
        }
        let checkpoint = checkpoints.first ?? "model.safetensors"
        let path = directory.appendingPathComponent(checkpoint).path
        let calibrationFile = directory.appendingPathComponent(Int8Calibration.file)
        var calibration: Int8Calibration?
        if FileManager.default.fileExists(atPath: calibrationFile.path) {
            calibration = try ConfigLoading.decode(Int8Calibration.self, at: calibrationFile)
        } else if precision == .int8 {
            throw ModelError(
                .badConfig,
                "\(directory.path): EfficientNet in int8 needs activation ranges (\(Int8Calibration.file)); "
                    + "write an int8 folder with mass compress --int8 --calibration IMAGES")
        }
        preprocessing = try Self.loadPreprocessing(directory)
        do {
            let weights: any WeightSource =
                compressed ? try SafeTensorsFile(path: path) : try PyTorchCheckpoint(path: path)
            network = try EfficientNetLite(
                weights: weights, onednn: onednn, int8Ranges: calibration?.ranges, inputSize: preprocessing.crop)
        } catch let error as WeightsError {
            throw ModelError(.badConfig, error.description, cause: error)
        }
        let headFile = directory.appendingPathComponent("head.safetensors")
        if FileManager.default.fileExists(atPath: headFile.path) {
            let head = try TrainedHead(contentsOf: headFile, inputWidth: network.featureCount)
            (trainedHead, labels) = (head, head.labels)
            return
        }
        trainedHead = nil
        let labelsFile = directory.appendingPathComponent("labels.txt")
        guard let text = try? String(contentsOf: labelsFile, encoding: .utf8) else {
            throw ModelError(
                .missingFile, "\(labelsFile.path) is missing: the class names, one per line in logit order")
        }
        labels = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
        guard labels.count == network.classes else {
            throw ModelError(
                .badConfig, "\(labelsFile.path) has \(labels.count) labels but the model has \(network.classes) classes"
            )
        }
    }

    /// `preprocessing.json` of an image model folder: how images become the network's input. Unknown keys and
    /// values the network cannot take are refused by name.
    /// `crop` is also the network's input side (224 for Lite0, 240 for Lite1, 260 for Lite2).
    static func loadPreprocessing(_ directory: URL) throws -> ImagePreprocessing {
        let url = directory.appendingPathComponent("preprocessing.json")
        var result = ImagePreprocessing()
        guard FileManager.default.fileExists(atPath: url.path) else { return result }
        struct Keys: Decodable {
            let resize: Int?
            let crop: Int?
            let mean: Float?
            let std: Float?
        }
        let keys = try ConfigLoading.decode(Keys.self, at: url)
        if let object = try? JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any],
            let unknown = Set(object.keys).subtracting(["resize", "crop", "mean", "std"]).sorted().first
        {
            throw ModelError(.badConfig, "\(url.path): unknown key '\(unknown)' (resize, crop, mean, std)")
        }
        result.crop = keys.crop ?? EfficientNetLite.defaultInputSize
        result.resize = keys.resize ?? max(result.resize, result.crop)
        result.mean = keys.mean ?? result.mean
        result.std = keys.std ?? result.std
        guard (32...1024).contains(result.crop) else {
            throw ModelError(.unsupported, "\(url.path): 'crop' is \(result.crop); the network takes 32 to 1024")
        }
        guard result.resize >= result.crop, result.resize <= 4096 else {
            throw ModelError(.badConfig, "\(url.path): 'resize' must be from 'crop' (\(result.crop)) to 4096")
        }
        guard result.std > 0, result.std.isFinite, result.mean.isFinite else {
            throw ModelError(.badConfig, "\(url.path): 'std' must be a positive number and 'mean' a number")
        }
        return result
    }

    /// Decoded image → the normalised NCHW input, written at `into` (`inputSize` floats).
    public func prepare(_ image: RGBImage, into: UnsafeMutablePointer<Float>) {
        preprocessing.normalize(preprocessing.crop(image), into: into)
    }

    /// An encoded image (JPEG or PNG) → the normalised NCHW input, written at `into` (`inputSize` floats).
    public func prepare(
        encoded file: [UInt8], maxPixels: Int = ImageDecoder.defaultMaxPixels, into: UnsafeMutablePointer<Float>
    ) throws {
        preprocessing.normalize(try preprocessing.crop(encoded: file, maxPixels: maxPixels), into: into)
    }

    /// An image as a request brings it: an encoded file (JPEG or PNG), or a prepared input (NCHW [3, 224, 224],
    /// normalised).
    public enum Image: Sendable {
        case encoded([UInt8])
        case prepared([Float])
        /// Decoded pixels (a dataset's), resized and cropped as an encoded file's would be.
        case pixels(RGBImage)
    }

    /// Logits for encoded images (JPEG or PNG), or the error that kept an image from being read.
    public func logits(
        encoded files: [[UInt8]], maxPixels: Int = ImageDecoder.defaultMaxPixels,
        workspace: EfficientNetWorkspace, pool: ComputePool
    ) -> [Result<[Float], ImageError>] {
        logits(files.map(Image.encoded), maxPixels: maxPixels, workspace: workspace, pool: pool)
    }

    /// Logits per image, or the error that kept an image from being read. Each image is decoded (or transposed)
    /// by the thread that then runs it through the network (see `EfficientNetLite.logits`).
    public func logits(
        _ images: [Image], maxPixels: Int = ImageDecoder.defaultMaxPixels, workspace: EfficientNetWorkspace,
        pool: ComputePool
    ) -> [Result<[Float], ImageError>] {
        guard let trainedHead else {
            return outputs(.logits, images, maxPixels: maxPixels, workspace: workspace, pool: pool)
        }
        return outputs(.features, images, maxPixels: maxPixels, workspace: workspace, pool: pool).map { result in
            result.map { features in trainedHead.logits(features) }
        }
    }

    /// The features the classifier reads (the network's pooled last layer, `network.featureCount` values)
    /// per image, or the error that kept an image from being read: the input of a new head trained on them.
    public func features(
        _ images: [Image], maxPixels: Int = ImageDecoder.defaultMaxPixels, workspace: EfficientNetWorkspace,
        pool: ComputePool
    ) -> [Result<[Float], ImageError>] {
        outputs(.features, images, maxPixels: maxPixels, workspace: workspace, pool: pool)
    }

    private func outputs(
        _ output: EfficientNetLite.Output, _ images: [Image], maxPixels: Int, workspace: EfficientNetWorkspace,
        pool: ComputePool
    ) -> [Result<[Float], ImageError>] {
        let errors = UnsafeMutableBufferPointer<ImageError?>.allocate(capacity: images.count)
        errors.initialize(repeating: nil)
        defer { errors.deinitialize().deallocate() }
        let preprocessing = self.preprocessing
        let size = inputSize
        let side = inputSide
        let outputs = network.outputs(output, batch: images.count, workspace: workspace, pool: pool) { i, input in
            switch images[i] {
            case .prepared(let values):
                guard values.count == size else {
                    errors[i] = ImageError(.corrupt, "a prepared image has \(values.count) values, not \(size)")
                    return false
                }
                values.withUnsafeBufferPointer {
                    EfficientNetLite.toNHWC($0.baseAddress!, side: side, rows: 0..<side, into: input)
                }
                return true
            case .pixels(let image):
                preprocessing.normalizeInterleaved(preprocessing.crop(image), into: input)
                return true
            case .encoded(let file):
                do {
                    preprocessing.normalizeInterleaved(
                        try preprocessing.crop(encoded: file, maxPixels: maxPixels), into: input)
                    return true
                } catch let error as ImageError {
                    errors[i] = error
                } catch {
                    errors[i] = ImageError(.corrupt, "\(error)")
                }
                return false
            }
        }
        return images.indices.map { i in
            if let out = outputs[i] { return .success(out) }
            return .failure(errors[i] ?? ImageError(.corrupt, "image \(i) was not classified"))
        }
    }

    /// Logits for `batch` prepared inputs laid out one after another.
    public func logits(
        _ inputs: UnsafePointer<Float>, batch: Int, workspace: EfficientNetWorkspace, pool: ComputePool
    ) -> [[Float]] {
        guard let trainedHead else { return network.logits(inputs, batch: batch, workspace: workspace, pool: pool) }
        let imageSize = inputSize
        let side = inputSide
        return network.outputs(.features, batch: batch, workspace: workspace, pool: pool) { i, x in
            EfficientNetLite.toNHWC(inputs + i * imageSize, side: side, rows: 0..<side, into: x)
            return true
        }.map { trainedHead.logits($0!) }
    }

    /// Softmax probabilities of one image's logits, in class order.
    public func probabilities(_ logits: [Float]) -> [Float] {
        let m = logits.max() ?? 0
        let exps = logits.map { Foundation.exp(Double($0 - m)) }
        let total = exps.reduce(0, +)
        return exps.map { Float($0 / total) }
    }

    /// The `k` most likely classes with softmax probabilities, most likely first.
    public func top(_ logits: [Float], k: Int) -> [Prediction] {
        let p = probabilities(logits)
        return logits.indices.sorted { logits[$0] > logits[$1] }.prefix(max(0, k)).map {
            Prediction(index: $0, label: labels[$0], score: p[$0])
        }
    }
}

extension ImageClassifier {
    /// EfficientNet-Lite from a PyTorch checkpoint (`*.pth` / `*.pt`), or a compressed folder (`model.safetensors`
    /// and `int8-calibration.json`), with `labels.txt`.
    public static let architecture = ArchitectureRegistry.Entry(
        name: "efficientnet-lite", tasks: [.imageClassification], precisions: [.float32, .int8],
        matches: {
            $0.has(suffix: ".pth") || $0.has(suffix: ".pt") || $0.files.contains(ImageClassifier.Int8Calibration.file)
        },
        load: { folder, _, precision in try ImageClassifier(directory: folder.directory, precision: precision) })
}
