public import Foundation
import MassImage

extension ImageDataset {
    /// An image folder: one subfolder per class (named as the label), PNG or JPEG files in each. Every file is
    /// decoded before anything trains, resized on its shorter side and centre-cropped to `side`×`side` (the
    /// inference path's bilinear resize), as RGB or, with `channels` 1, grey (the mean of R, G and B). A file that
    /// is not a readable image, an empty class folder, or (with `labels`) a folder that is not one of them is
    /// refused, naming the file or folder. `labels` fixes the classes' order (else the folder names, sorted).
    public init(folder: URL, side: Int, channels: Int, labels given: [String]? = nil) throws(DatasetError) {
        let manager = FileManager.default
        let root = folder.path
        guard side > 0, channels == 1 || channels == 3 else {
            throw DatasetError(file: root, "images need a positive side and 1 or 3 channels")
        }
        let found: [String]
        do {
            found = try manager.contentsOfDirectory(atPath: root).filter { name in
                var folder: ObjCBool = false
                return !name.hasPrefix(".")
                    && manager.fileExists(atPath: "\(root)/\(name)", isDirectory: &folder) && folder.boolValue
            }.sorted()
        } catch { throw DatasetError(file: root, "cannot read the folder (\(error.localizedDescription))") }
        let names = given ?? found
        guard names.count >= 2 else { throw DatasetError(file: root, "needs a subfolder per class, two at least") }
        if let stray = found.first(where: { !names.contains($0) }) {
            throw DatasetError(file: "\(root)/\(stray)", "is not one of the labels \(names)")
        }
        var preprocessing = ImagePreprocessing()
        (preprocessing.resize, preprocessing.crop) = (side, side)
        var pixels: [Float] = []
        var labels: [Int] = []
        for (label, name) in names.enumerated() {
            let classFolder = "\(root)/\(name)"
            let files = ((try? manager.contentsOfDirectory(atPath: classFolder)) ?? []).filter { !$0.hasPrefix(".") }
                .sorted()
            guard !files.isEmpty else { throw DatasetError(file: classFolder, "has no images") }
            for file in files {
                let path = "\(classFolder)/\(file)"
                guard let data = manager.contents(atPath: path) else {
                    throw DatasetError(file: path, "cannot be read")
                }
                let image: RGBImage
                do {
                    image = preprocessing.crop(try ImageDecoder.decode([UInt8](data)))
                } catch { throw DatasetError(file: path, "is not a readable image (\(error))") }
                let bytes = image.pixels
                if channels == 3 {
                    pixels += bytes.map { Float($0) / 255 }
                } else {
                    for p in 0..<(side * side) {
                        let sum = Float(bytes[3 * p]) + Float(bytes[3 * p + 1]) + Float(bytes[3 * p + 2])
                        pixels.append(sum / (3 * 255))
                    }
                }
                labels.append(label)
            }
        }
        self.init(
            pixels: pixels, labels: labels, height: side, width: side, channels: channels, classCount: names.count)
    }
}
