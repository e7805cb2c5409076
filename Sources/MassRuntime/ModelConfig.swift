import Foundation
public import MassAudio
public import MassModels
public import MassTensor

/// A model's `mass.json`: what it does and how it is served. Every key is optional except `task`; unknown keys
/// and bad values are errors that name the key (docs/configuration.md lists them all).
public struct ModelConfig: Sendable, Equatable {
    public typealias Task = ModelTask

    /// Which version folders to serve.
    public enum VersionPolicy: Sendable, Equatable {
        /// The `n` highest-numbered versions.
        case latest(Int)
        /// Exactly these versions.
        case specific([Int])
        case all
    }

    public struct Batching: Sendable, Equatable {
        /// Requests coalesced into one model call, at most.
        public var maxBatchSize = 32
        /// How long the first request of a batch may wait for others.
        public var maxQueueDelayMilliseconds = 0.0
        /// Tokens (text models) in one model call, at most.
        public var maxBatchTokens = 4096
        /// Tokens in one model call while more than one tenant is active (fair scheduling: a light tenant's
        /// request waits behind a short batch, not a full one).
        public var contendedBatchTokens = 32
        /// A tenant that queued a request this recently is active.
        public var contentionWindowMilliseconds = 500.0

        public init(
            maxBatchSize: Int = 32, maxQueueDelayMilliseconds: Double = 0.0, maxBatchTokens: Int = 4096,
            contendedBatchTokens: Int = 32, contentionWindowMilliseconds: Double = 500
        ) {
            self.maxBatchSize = maxBatchSize
            self.maxQueueDelayMilliseconds = maxQueueDelayMilliseconds
            self.maxBatchTokens = maxBatchTokens
            self.contendedBatchTokens = contendedBatchTokens
            self.contentionWindowMilliseconds = contentionWindowMilliseconds
        }
    }

    public var task: Task
    public var batching = Batching()
    /// Requests waiting for a model call, at most; more are refused at once.
    public var maxQueueSize = 256
    /// Model workers (each holds its own copy of the model's scratch memory).
    public var instanceCount = 1
    /// A request not answered within this is dropped and gets an error.
    public var requestTimeoutMilliseconds = 30_000.0
    /// The same for batch-class requests (tenants on a batch plan, or `X-Mass-Priority: batch`).
    public var batchRequestTimeoutMilliseconds = 300_000.0
    /// Texts in one request, at most.
    public var maxInputs = 256
    /// Characters in one text, at most.
    public var maxInputCharacters = 100_000
    /// Pixels of one decoded image, at most (checked from the file's header, before decoding).
    public var maxImagePixels = 40_000_000
    /// Seconds of one audio file, at most.
    public var maxAudioSeconds = 3600.0
    /// How a speech model's audio becomes 16 kHz mono: libswresample to 16-bit as faster-whisper does (default),
    /// or the float path (channels averaged, resampled in float).
    public var audioConversion = AudioDecoder.Conversion.swresample
    public var versionPolicy = VersionPolicy.latest(1)
    /// The architecture registry entry to use (e.g. "bert"); nil: the first that matches the folder.
    public var architecture: String?
    /// What the linear layers run in: float32, or int8 (quantised when the model loads; architectures that
    /// support it: bert).
    public var precision = Linear.Precision.float32
    /// A service-type model: the provider whose API answers this model's requests (nil: computed here).
    public var remote: RemoteConfig?
    /// A calibration adapter file of the version folder: a linear map of a text-embedding model's vectors, or a
    /// per-label scale and bias of a text classifier's logits.
    public var adapter: String?

    public init(task: Task) {
        self.task = task
    }

    /// Parses `mass.json` bytes; `file` names the file in errors.
    public static func parse(_ data: Data, file: String) throws -> ModelConfig {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw RuntimeError(.badConfig, "\(file): not valid JSON (\(error.localizedDescription))")
        }
        guard let json = object as? [String: Any] else {
            throw RuntimeError(.badConfig, "\(file): the top level must be a JSON object")
        }
        var reader = KeyReader(json, file: file, path: "")
        guard let taskName = try reader.string("task") else {
            throw RuntimeError(
                .badConfig,
                "\(file): missing key 'task' (one of \(Task.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard let task = Task(rawValue: taskName) else {
            throw RuntimeError(
                .badConfig,
                "\(file): 'task' is '\(taskName)'; expected one of \(Task.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        var config = ModelConfig(task: task)
        if var b = try reader.object("batching") {
            config.batching.maxBatchSize = try b.int("max_batch_size", in: 1...4096) ?? config.batching.maxBatchSize
            config.batching.maxQueueDelayMilliseconds =
                try b.number("max_queue_delay_ms", in: 0...10_000) ?? config.batching.maxQueueDelayMilliseconds
            config.batching.maxBatchTokens =
                try b.int("max_batch_tokens", in: 1...1_000_000) ?? config.batching.maxBatchTokens
            config.batching.contendedBatchTokens =
                try b.int("contended_batch_tokens", in: 1...1_000_000) ?? config.batching.contendedBatchTokens
            config.batching.contentionWindowMilliseconds =
                try b.number("contention_window_ms", in: 0...60_000) ?? config.batching.contentionWindowMilliseconds
            try b.finish()
        }
        config.maxQueueSize = try reader.int("max_queue_size", in: 1...1_000_000) ?? config.maxQueueSize
        config.instanceCount = try reader.int("instance_count", in: 1...64) ?? config.instanceCount
        config.requestTimeoutMilliseconds =
            try reader.number("request_timeout_ms", in: 1...3_600_000) ?? config.requestTimeoutMilliseconds
        config.batchRequestTimeoutMilliseconds =
            try reader.number("batch_request_timeout_ms", in: 1...86_400_000) ?? config.batchRequestTimeoutMilliseconds
        config.maxInputs = try reader.int("max_inputs", in: 1...100_000) ?? config.maxInputs
        config.maxInputCharacters =
            try reader.int("max_input_characters", in: 1...100_000_000) ?? config.maxInputCharacters
        config.maxImagePixels = try reader.int("max_image_pixels", in: 1...1_000_000_000) ?? config.maxImagePixels
        config.maxAudioSeconds = try reader.number("max_audio_seconds", in: 1...86_400) ?? config.maxAudioSeconds
        if let conversion = try reader.string("audio_conversion") {
            guard let chosen = AudioDecoder.Conversion(rawValue: conversion) else {
                throw reader.bad("audio_conversion", "swresample or float")
            }
            config.audioConversion = chosen
        }
        config.architecture = try reader.string("architecture")
        if let precision = try reader.string("precision") {
            guard let chosen = Linear.Precision(rawValue: precision) else {
                throw reader.bad("precision", "float32 or int8")
            }
            config.precision = chosen
        }
        config.adapter = try reader.string("adapter")
        if let adapter = config.adapter {
            guard [.textEmbedding, .textClassification].contains(task), !adapter.isEmpty, !adapter.contains("/"),
                adapter != "..", adapter != "."
            else {
                throw RuntimeError(
                    .badConfig,
                    "\(file): 'adapter' is a file name in the version folder, for text-embedding and text-classification models"
                )
            }
        }
        if var r = try reader.object("remote") {
            config.remote = try RemoteConfig.parse(&r, task: task)
            if config.architecture != nil || config.adapter != nil || config.precision != .float32 {
                throw RuntimeError(
                    .badConfig, "\(file): 'remote' excludes 'architecture', 'precision' and 'adapter'")
            }
        }
        if var v = try reader.object("version_policy") {
            let latest = try v.int("latest", in: 1...1_000)
            let specific = try v.intArray("specific")
            let all = try v.bool("all")
            try v.finish()
            switch (latest, specific, all) {
            case (let n?, nil, nil): config.versionPolicy = .latest(n)
            case (nil, let list?, nil) where !list.isEmpty && list.allSatisfy({ $0 >= 1 }):
                config.versionPolicy = .specific(list.sorted())
            case (nil, nil, true?): config.versionPolicy = .all
            default:
                throw RuntimeError(
                    .badConfig,
                    "\(file): 'version_policy' must be exactly one of {\"latest\": N}, {\"specific\": [versions ≥ 1]}, {\"all\": true}"
                )
            }
        }
        try reader.finish()
        return config
    }
}

/// Reads keys of one JSON object, remembering which it saw so that the rest can be reported as unknown.
struct KeyReader {
    let json: [String: Any]
    let file: String
    let path: String
    var seen: Set<String> = []

    init(_ json: [String: Any], file: String, path: String) {
        self.json = json
        self.file = file
        self.path = path
    }

    func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func bad(_ key: String, _ expected: String) -> RuntimeError {
        RuntimeError(.badConfig, "\(file): '\(name(key))' must be \(expected)")
    }

    mutating func value(_ key: String) -> Any? {
        seen.insert(key)
        return json[key]
    }

    mutating func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v as? String else { throw bad(key, "a string") }
        return s
    }

    mutating func bool(_ key: String) throws -> Bool? {
        guard let v = value(key) else { return nil }
        guard let n = v as? NSNumber, Self.isBool(n) else { throw bad(key, "true or false") }
        return n.boolValue
    }

    mutating func number(_ key: String, in range: ClosedRange<Double>) throws -> Double? {
        guard let v = value(key) else { return nil }
        guard let n = v as? NSNumber, !Self.isBool(n), range.contains(n.doubleValue) else {
            throw bad(key, "a number from \(Self.format(range.lowerBound)) to \(Self.format(range.upperBound))")
        }
        return n.doubleValue
    }

    mutating func int(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let v = value(key) else { return nil }
        guard let n = v as? NSNumber, !Self.isBool(n), n.doubleValue == n.doubleValue.rounded(),
            range.contains(n.intValue)
        else { throw bad(key, "a whole number from \(range.lowerBound) to \(range.upperBound)") }
        return n.intValue
    }

    mutating func intArray(_ key: String) throws -> [Int]? {
        guard let v = value(key) else { return nil }
        guard let list = v as? [Any] else { throw bad(key, "an array of whole numbers") }
        return try list.map { item in
            guard let n = item as? NSNumber, !Self.isBool(n), n.doubleValue == n.doubleValue.rounded() else {
                throw bad(key, "an array of whole numbers")
            }
            return n.intValue
        }
    }

    mutating func stringArray(_ key: String) throws -> [String]? {
        guard let v = value(key) else { return nil }
        guard let list = v as? [Any], let strings = list as? [String] else { throw bad(key, "an array of strings") }
        return strings
    }

    mutating func object(_ key: String) throws -> KeyReader? {
        guard let v = value(key) else { return nil }
        guard let o = v as? [String: Any] else { throw bad(key, "an object") }
        return KeyReader(o, file: file, path: name(key))
    }

    /// Throws for the first key (alphabetically) that was never read.
    func finish() throws {
        if let unknown = json.keys.filter({ !seen.contains($0) }).sorted().first {
            throw RuntimeError(.badConfig, "\(file): unknown key '\(name(unknown))' (see docs/configuration.md)")
        }
    }

    /// JSON booleans arrive as NSNumber too; Foundation tags them with the `char` type code, numbers never.
    static func isBool(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }

    static func format(_ d: Double) -> String { d == d.rounded() ? String(Int(d)) : String(d) }
}
