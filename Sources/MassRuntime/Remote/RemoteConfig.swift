import Foundation
public import MassModels

/// The `remote` block of a service-type model's `mass.json`: which provider answers its requests, how it is
/// reached, and how failures are survived (docs/services.md).
public struct RemoteConfig: Sendable, Equatable {
    /// The API the provider speaks.
    public enum API: String, Sendable, CaseIterable {
        /// `POST {url}/v1/embeddings` (OpenAI, Mass, vLLM, TEI's OpenAI route, LiteLLM).
        case openAIEmbeddings = "openai-embeddings"
        /// `POST {url}/rerank` (TEI and Mass).
        case teiRerank = "tei-rerank"
        /// `POST {url}/predict` (TEI and Mass).
        case teiPredict = "tei-predict"
        /// `POST {url}/v2/models/{model}/infer` (KServe's open inference protocol, REST, JSON tensors).
        case kserveV2 = "kserve-v2"
        /// `POST {url}/v1/audio/transcriptions`, multipart, `verbose_json` (OpenAI, Mass, faster-whisper servers).
        case openAITranscriptions = "openai-transcriptions"

        /// The tasks a model speaking this API can serve.
        public var tasks: [ModelTask] {
            switch self {
            case .openAIEmbeddings: [.textEmbedding]
            case .teiRerank: [.rerank]
            case .teiPredict: [.textClassification]
            case .kserveV2: [.textEmbedding, .rerank, .textClassification]
            case .openAITranscriptions: [.speechRecognition]
            }
        }
    }

    /// Where the API key comes from; the key itself is never in `mass.json`.
    public enum Credential: Sendable, Equatable {
        case none
        /// An environment variable of the server's process.
        case environment(String)
        /// A file (absolute, or relative to the model's version folder); surrounding white space is dropped.
        case file(String)
    }

    public struct Retry: Sendable, Equatable {
        /// Calls to the provider per request, at most (the first included).
        public var attempts = 3
        /// Backoff before retry n is a random wait up to min(max, base x 2^(n-1)) ("full jitter").
        public var baseDelayMilliseconds = 50.0
        public var maxDelayMilliseconds = 2_000.0
        /// A 429's Retry-After longer than this is not waited for (the request falls back or fails).
        public var maxRetryAfterMilliseconds = 5_000.0

        public init() {}
    }

    public struct Breaker: Sendable, Equatable {
        /// The window over which the error rate is computed.
        public var windowMilliseconds = 10_000.0
        /// Calls in the window before the error rate can open the breaker.
        public var minimumCalls = 10
        /// Failed share of the window's calls that opens the breaker.
        public var errorRate = 0.5
        /// Failures in a row that open the breaker whatever the window says.
        public var consecutiveFailures = 5
        /// How long an open breaker refuses calls before it lets probes through.
        public var openMilliseconds = 5_000.0
        /// Calls let through at once while half-open; one success closes the breaker, one failure reopens it.
        public var halfOpenProbes = 1

        public init() {}
    }

    /// Sampling live traffic into calibration pairs.
    public struct Recording: Sendable, Equatable {
        /// The local model that answers the sampled inputs too.
        public var candidate: String
        /// Share of the requests the provider answered that are recorded.
        public var sampleRate: Double
    }

    public var api: API
    /// The provider's base URL (scheme, host, port, optional path prefix).
    public var url: URL
    /// The model name sent to the provider (nil: the model's own name).
    public var model: String?
    public var credential = Credential.none
    public var connectTimeoutMilliseconds = 2_000.0
    /// One call to the provider, at most (the request's own deadline also bounds it).
    public var callTimeoutMilliseconds = 10_000.0
    /// Calls in flight to the provider at once, at most; more wait (within their deadline).
    public var maxInFlight = 64
    public var retry = Retry()
    public var breaker = Breaker()
    /// A second, concurrent call is made when the first has not answered within this (nil: no hedging).
    public var hedgeAfterMilliseconds: Double?
    /// Models (of this server) tried in order when the provider cannot answer.
    public var fallback: [String] = []
    /// How often an unready provider is probed again.
    public var probeIntervalMilliseconds = 5_000.0
    /// Expected vector length (text embeddings); nil: learned from the first answer.
    public var dimension: Int?
    /// Largest provider answer read, in bytes.
    public var maxResponseBytes = 64 << 20
    /// Record calibration pairs from live traffic (nil: only on request, `POST /admin/v1/services/NAME/pairs`).
    public var record: Recording?

    public init(api: API, url: URL) {
        self.api = api
        self.url = url
    }

    static func parse(_ reader: inout KeyReader, task: ModelTask) throws -> RemoteConfig {
        guard let apiName = try reader.string("api") else {
            throw RuntimeError(
                .badConfig,
                "\(reader.file): missing key 'remote.api' (one of \(API.allCases.map(\.rawValue).joined(separator: ", ")))"
            )
        }
        guard let api = API(rawValue: apiName) else {
            throw reader.bad("api", "one of \(API.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard api.tasks.contains(task) else {
            throw RuntimeError(
                .badConfig,
                "\(reader.file): 'remote.api' \(api.rawValue) cannot serve task '\(task.rawValue)' (it serves \(api.tasks.map(\.rawValue).joined(separator: ", ")))"
            )
        }
        guard let urlText = try reader.string("url") else {
            throw RuntimeError(.badConfig, "\(reader.file): missing key 'remote.url'")
        }
        guard let url = URL(string: urlText), let scheme = url.scheme?.lowercased(),
            ["http", "https"].contains(scheme),
            let host = url.host, !host.isEmpty
        else { throw reader.bad("url", "an http:// or https:// URL with a host") }
        guard url.user == nil, url.password == nil, url.query == nil else {
            throw reader.bad("url", "a URL without credentials or a query (use 'api_key_env' or 'api_key_file')")
        }
        var config = RemoteConfig(api: api, url: url)
        config.model = try reader.string("model")
        switch (try reader.string("api_key_env"), try reader.string("api_key_file")) {
        case (nil, nil): break
        case (let name?, nil) where !name.isEmpty: config.credential = .environment(name)
        case (nil, let path?) where !path.isEmpty: config.credential = .file(path)
        default:
            throw RuntimeError(
                .badConfig, "\(reader.file): give at most one of 'remote.api_key_env' and 'remote.api_key_file'")
        }
        config.connectTimeoutMilliseconds =
            try reader.number("connect_timeout_ms", in: 1...600_000) ?? config.connectTimeoutMilliseconds
        config.callTimeoutMilliseconds =
            try reader.number("call_timeout_ms", in: 1...3_600_000) ?? config.callTimeoutMilliseconds
        config.maxInFlight = try reader.int("max_in_flight", in: 1...100_000) ?? config.maxInFlight
        config.hedgeAfterMilliseconds = try reader.number("hedge_after_ms", in: 1...3_600_000)
        config.fallback = try reader.stringArray("fallback") ?? []
        config.probeIntervalMilliseconds =
            try reader.number("probe_interval_ms", in: 10...3_600_000) ?? config.probeIntervalMilliseconds
        config.dimension = try reader.int("dimension", in: 1...1_000_000)
        config.maxResponseBytes = try reader.int("max_response_bytes", in: 1024...(1 << 34)) ?? config.maxResponseBytes
        if var r = try reader.object("retry") {
            config.retry.attempts = try r.int("attempts", in: 1...20) ?? config.retry.attempts
            config.retry.baseDelayMilliseconds =
                try r.number("base_delay_ms", in: 0...600_000) ?? config.retry.baseDelayMilliseconds
            config.retry.maxDelayMilliseconds =
                try r.number("max_delay_ms", in: 0...600_000) ?? config.retry.maxDelayMilliseconds
            config.retry.maxRetryAfterMilliseconds =
                try r.number("max_retry_after_ms", in: 0...3_600_000) ?? config.retry.maxRetryAfterMilliseconds
            try r.finish()
        }
        if var b = try reader.object("breaker") {
            config.breaker.windowMilliseconds =
                try b.number("window_ms", in: 100...3_600_000) ?? config.breaker.windowMilliseconds
            config.breaker.minimumCalls = try b.int("min_calls", in: 1...1_000_000) ?? config.breaker.minimumCalls
            config.breaker.errorRate = try b.number("error_rate", in: 0.01...1) ?? config.breaker.errorRate
            config.breaker.consecutiveFailures =
                try b.int("consecutive_failures", in: 1...1_000_000) ?? config.breaker.consecutiveFailures
            config.breaker.openMilliseconds =
                try b.number("open_ms", in: 1...3_600_000) ?? config.breaker.openMilliseconds
            config.breaker.halfOpenProbes =
                try b.int("half_open_probes", in: 1...1_000) ?? config.breaker.halfOpenProbes
            try b.finish()
        }
        if var r = try reader.object("record") {
            guard let candidate = try r.string("candidate"), !candidate.isEmpty else {
                throw RuntimeError(
                    .badConfig, "\(reader.file): 'remote.record' needs a 'candidate' (a local model's name)")
            }
            config.record = Recording(candidate: candidate, sampleRate: try r.number("sample_rate", in: 0...1) ?? 0.1)
            try r.finish()
        }
        try reader.finish()
        return config
    }
}
