import CZlib
public import Foundation

/// IDX files (the MNIST family's format, gzip-compressed or not): a magic number naming the element type and
/// the number of dimensions, the big-endian dimension sizes, then the elements. Only unsigned bytes (0x08) are
/// read, as MNIST and Fashion-MNIST store images and labels.
public struct IDXFile: Sendable {
    public let shape: [Int]
    public let bytes: [UInt8]

    public init(contentsOf url: URL) throws(DatasetError) {
        let file = url.path
        var data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw DatasetError(file: file, "cannot read (\(error.localizedDescription))")
        }
        if data.starts(with: [0x1F, 0x8B]) { data = try Self.gunzip(data, file: file) }
        let raw = [UInt8](data)
        guard raw.count >= 4, raw[0] == 0, raw[1] == 0 else {
            throw DatasetError(file: file, "not an IDX file (its magic number does not start with two zero bytes)")
        }
        guard raw[2] == 0x08 else {
            throw DatasetError(file: file, "IDX element type 0x\(String(raw[2], radix: 16)) is not unsigned bytes")
        }
        let dimensions = Int(raw[3])
        guard dimensions > 0, raw.count >= 4 + 4 * dimensions else {
            throw DatasetError(file: file, "IDX header is truncated")
        }
        var shape: [Int] = []
        for d in 0..<dimensions {
            let at = 4 + 4 * d
            shape.append(raw[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) })
        }
        let count = shape.reduce(1, *)
        let start = 4 + 4 * dimensions
        guard raw.count - start == count else {
            throw DatasetError(
                file: file, "IDX data has \(raw.count - start) bytes; the shape \(shape) needs \(count)")
        }
        self.shape = shape
        bytes = Array(raw[start...])
    }

    static func gunzip(_ data: Data, file: String) throws(DatasetError) -> Data {
        var stream = z_stream()
        guard inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DatasetError(file: file, "zlib could not start")
        }
        defer { inflateEnd(&stream) }
        var input = [UInt8](data)
        var output = Data()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var status: Int32 = Z_OK
        input.withUnsafeMutableBufferPointer { inp in
            stream.next_in = inp.baseAddress
            stream.avail_in = uInt(inp.count)
            repeat {
                chunk.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress
                    stream.avail_out = uInt(out.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    output.append(out.baseAddress!, count: out.count - Int(stream.avail_out))
                }
            } while status == Z_OK
        }
        guard status == Z_STREAM_END else { throw DatasetError(file: file, "is not a complete gzip stream") }
        return output
    }
}

/// Labelled images as float pixels in [0, 1], NHWC: [count, height, width, channels].
public struct ImageDataset: Sendable {
    public var pixels: [Float]
    public var labels: [Int]
    public var height: Int
    public var width: Int
    public var channels: Int
    public var classCount: Int

    public var count: Int { labels.count }

    public init(pixels: [Float], labels: [Int], height: Int, width: Int, channels: Int, classCount: Int) {
        (self.pixels, self.labels, self.height, self.width, self.channels, self.classCount) = (
            pixels, labels, height, width, channels, classCount
        )
    }

    /// MNIST-style IDX pair: images [n, h, w] and labels [n] (each below `classes`).
    public init(idxImages: URL, labels labelsURL: URL, classes: Int = 10) throws(DatasetError) {
        let images = try IDXFile(contentsOf: idxImages)
        let labels = try IDXFile(contentsOf: labelsURL)
        guard images.shape.count == 3 else {
            throw DatasetError(file: idxImages.path, "images must be [count, height, width], got \(images.shape)")
        }
        guard labels.shape == [images.shape[0]] else {
            throw DatasetError(
                file: labelsURL.path, "has \(labels.shape) labels for \(images.shape[0]) images")
        }
        if let bad = labels.bytes.firstIndex(where: { Int($0) >= classes }) {
            throw DatasetError(
                file: labelsURL.path, line: bad + 1, "label \(labels.bytes[bad]) is not below \(classes) classes")
        }
        pixels = images.bytes.map { Float($0) / 255 }
        self.labels = labels.bytes.map(Int.init)
        (height, width, channels, classCount) = (images.shape[1], images.shape[2], 1, classes)
    }

    /// The examples at `indices`, as one batch: pixels [indices.count, h, w, c] and their labels.
    public func batch(_ indices: [Int]) -> (pixels: [Float], labels: [Int]) {
        let size = height * width * channels
        var out = [Float]()
        out.reserveCapacity(indices.count * size)
        for i in indices { out += pixels[(i * size)..<((i + 1) * size)] }
        return (out, indices.map { labels[$0] })
    }
}
