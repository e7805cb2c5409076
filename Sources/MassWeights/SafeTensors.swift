import Foundation
public import MassTensor

/// A `.safetensors` file, memory-mapped; tensors are views into the mapping (no copy until widened).
///
/// Format (huggingface/safetensors): u64 little-endian header length N, N bytes of JSON
/// `{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`, then the data buffer;
/// offsets are relative to the buffer. Every entry is validated when the file is opened: known dtype,
/// non-negative shape, offsets inside the buffer and matching the shape, no two tensors overlapping.
public struct SafeTensorsFile: WeightSource {
    /// The reference implementation refuses headers over 100 MB; so do we.
    public static let maxHeaderSize = 100_000_000

    public struct Entry: Sendable {
        public let dtype: DType
        public let shape: [Int]
        /// Byte range inside the data buffer.
        public let begin: Int
        public let end: Int
    }

    public let origin: String
    public let entries: [String: Entry]
    public let metadata: [String: String]
    private let file: MappedFile
    private let dataStart: Int

    public init(path: String) throws {
        let file = try MappedFile(path: path)
        self.file = file
        origin = path
        guard file.size >= 8 else {
            throw WeightsError(
                .truncated, file: path, "file is \(file.size) bytes, shorter than the 8-byte header length")
        }
        let headerLength = file.base.loadUnaligned(as: UInt64.self).littleEndian
        guard headerLength <= UInt64(Self.maxHeaderSize) else {
            throw WeightsError(.badHeader, file: path, "header length \(headerLength) exceeds the 100 MB limit")
        }
        let n = Int(headerLength)
        guard 8 + n <= file.size else {
            throw WeightsError(
                .truncated, file: path,
                "header says \(n) bytes of JSON but the file has only \(file.size - 8) after the length")
        }
        dataStart = 8 + n
        let headerData = Data(bytes: file.base + 8, count: n)
        let items: [String: HeaderItem]
        do {
            items = try JSONDecoder().decode([String: HeaderItem].self, from: headerData)
        } catch {
            throw WeightsError(
                .badHeader, file: path, "header is not a JSON object of tensor entries (\(Self.describe(error)))")
        }
        let bufferSize = file.size - dataStart
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (name, item) in items {
            switch (name == "__metadata__", item) {
            case (true, .metadata(let values)):
                metadata = values
            case (true, _):
                throw WeightsError(.badHeader, file: path, tensor: name, "__metadata__ must map strings to strings")
            case (false, .entry(let raw)):
                entries[name] = try Self.validate(name: name, raw: raw, bufferSize: bufferSize, path: path)
            case (false, .invalid(let why)):
                throw WeightsError(.badHeader, file: path, tensor: name, why)
            case (false, .metadata):
                throw WeightsError(.badHeader, file: path, tensor: name, HeaderItem.expected)
            }
        }
        try Self.checkOverlaps(entries, path: path)
        self.entries = entries
        self.metadata = metadata
    }

    /// One value of the header object: the `__metadata__` map or a tensor entry.
    private enum HeaderItem: Decodable {
        struct Raw: Decodable {
            let dtype: String
            let shape: [Int]
            let data_offsets: [Int]
        }
        case metadata([String: String])
        case entry(Raw)
        case invalid(String)

        static let expected = #"entry must be {"dtype": string, "shape": [int], "data_offsets": [int, int]}"#

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let values = try? container.decode([String: String].self) {
                self = .metadata(values)
                return
            }
            do {
                self = .entry(try container.decode(Raw.self))
            } catch {
                self = .invalid("\(Self.expected) (\(SafeTensorsFile.describe(error)))")
            }
        }
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): "missing key '\(key.stringValue)'"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            "wrong type at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
        case DecodingError.dataCorrupted(let context): context.debugDescription
        default: "\(error)"
        }
    }

    private static func validate(name: String, raw: HeaderItem.Raw, bufferSize: Int, path: String) throws -> Entry {
        guard let dtype = DType(rawValue: raw.dtype) else {
            throw WeightsError(
                .unknownDType, file: path, tensor: name,
                "unknown dtype '\(raw.dtype)' (supported: \(DType.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard raw.shape.allSatisfy({ $0 >= 0 }) else {
            throw WeightsError(.badHeader, file: path, tensor: name, "shape \(raw.shape) has a negative dimension")
        }
        guard raw.data_offsets.count == 2 else {
            throw WeightsError(.badHeader, file: path, tensor: name, "'data_offsets' must be two integers [begin, end]")
        }
        let (begin, end) = (raw.data_offsets[0], raw.data_offsets[1])
        guard begin >= 0, begin <= end, end <= bufferSize else {
            throw WeightsError(
                .badOffsets, file: path, tensor: name,
                "data_offsets [\(begin), \(end)] fall outside the \(bufferSize)-byte data buffer")
        }
        var elements = 1
        for d in raw.shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else {
                throw WeightsError(.badHeader, file: path, tensor: name, "shape \(raw.shape) is too large")
            }
            elements = product
        }
        guard elements.multipliedReportingOverflow(by: dtype.size) == (end - begin, false) else {
            throw WeightsError(
                .badOffsets, file: path, tensor: name,
                "shape \(raw.shape) of \(raw.dtype) needs \(elements &* dtype.size) bytes but data_offsets span \(end - begin)"
            )
        }
        return Entry(dtype: dtype, shape: raw.shape, begin: begin, end: end)
    }

    private static func checkOverlaps(_ entries: [String: Entry], path: String) throws {
        let sorted = entries.filter { $0.value.end > $0.value.begin }.sorted { $0.value.begin < $1.value.begin }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where next.value.begin < previous.value.end {
            throw WeightsError(
                .badOffsets, file: path, tensor: next.key, "overlaps tensor '\(previous.key)' in the data buffer")
        }
    }

    public var names: [String] { entries.keys.sorted() }

    public func tensor(_ name: String) throws -> Tensor {
        guard let entry = entries[name] else {
            throw WeightsError(.missingTensor, file: origin, tensor: name, "no such tensor in the file")
        }
        let storage = TensorStorage(
            borrowing: file.base + dataStart + entry.begin, byteCount: entry.end - entry.begin, owner: file)
        return Tensor(shape: entry.shape, dtype: entry.dtype, storage: storage)
    }
}
