import CMassBLAS
import Foundation
import Hummingbird
import MassModels
import MassRuntime
import Synchronization

/// The models a server hosts. Every text-embedding model of the repository is loaded (each version its policy
/// selects) and warmed up at start; the repository extension loads, reloads and unloads models at run time.
final class ModelHost: Sendable {
    /// The service of one loaded model version, by task.
    enum Service: Sendable {
        case embedding(EmbeddingService)
        case classification(ClassificationService)
        case transcription(TranscriptionService)

        func shutdown() {
            switch self {
            case .embedding(let s): s.shutdown()
            case .classification(let s): s.shutdown()
            case .transcription(let s): s.shutdown()
            }
        }

        func waitUntilStopped() async {
            switch self {
            case .embedding(let s): await s.waitUntilStopped()
            case .classification(let s): await s.waitUntilStopped()
            case .transcription(let s): await s.waitUntilStopped()
            }
        }
    }

    /// One loaded version of a model.
    struct Hosted: Sendable {
        let entry: ModelRepository.Entry
        let version: Int
        let service: Service

        /// The embedding service, or a 400 naming the model's task.
        func embedding(_ family: APIError.Family) throws -> EmbeddingService {
            guard case .embedding(let s) = service else { throw wrongTask("text-embedding", family) }
            return s
        }

        func classification(_ family: APIError.Family) throws -> ClassificationService {
            guard case .classification(let s) = service else { throw wrongTask("image-classification", family) }
            return s
        }

        func transcription(_ family: APIError.Family) throws -> TranscriptionService {
            guard case .transcription(let s) = service else { throw wrongTask("speech-recognition", family) }
            return s
        }

        private func wrongTask(_ wanted: String, _ family: APIError.Family) -> APIError {
            APIError.badRequest(
                "model '\(entry.name)' serves task '\(entry.config.task.rawValue)'; this route serves \(wanted) models",
                family, param: "model")
        }
    }

    /// The tasks this build serves.
    static let servedTasks: Set<ModelConfig.Task> = [.textEmbedding, .imageClassification, .speechRecognition]

    /// A model's state as the repository index reports it.
    enum Slot: Sendable {
        case loading
        case ready([Hosted])  // ascending versions
        case unloaded
        case failed(String)
        case unsupported(String)
    }

    let repository: ModelRepository
    let bodyLimit: Int
    let metrics = MetricsRegistry()
    private let slots = Mutex<[String: Slot]>([:])
    /// Names with a load or unload in progress (one at a time per model).
    private let busy = Mutex<Set<String>>([])

    /// Loads every model of the repository; a model that fails to load stops the start-up with its error.
    init(repository: ModelRepository, bodyLimit: Int) async throws {
        self.repository = repository
        self.bodyLimit = bodyLimit
        for name in try repository.modelNames() {
            let entry = try repository.entry(name)
            guard Self.servedTasks.contains(entry.config.task) else {
                let reason = "task '\(entry.config.task.rawValue)' is not served by this build"
                FileHandle.standardError.write(Data("mass: skipping model '\(name)': \(reason)\n".utf8))
                slots.withLock { $0[name] = .unsupported(reason) }
                continue
            }
            let versions = try await Self.start(entry, metrics: metrics)
            slots.withLock { $0[name] = .ready(versions) }
        }
        publishLoadedCount()
    }

    /// Builds and warms up a service for each served version (off the cooperative pool).
    private static func start(_ entry: ModelRepository.Entry, metrics: MetricsRegistry) async throws -> [Hosted] {
        var hosted: [Hosted] = []
        do {
            for version in entry.servedVersions {
                let directory = entry.versionDirectory(version)
                // Ready only after one real inference.
                switch entry.config.task {
                case .textEmbedding:
                    let model = try await OffPool.run(name: "mass-load") { try SentenceEmbedder(directory: directory) }
                    let service = EmbeddingService(
                        model: model, config: entry.config, name: entry.name, metrics: metrics)
                    hosted.append(Hosted(entry: entry, version: version, service: .embedding(service)))
                    _ = try await service.embed(["warm-up"])
                case .imageClassification:
                    let model = try await OffPool.run(name: "mass-load") { try ImageClassifier(directory: directory) }
                    let service = ClassificationService(
                        classifier: model, config: entry.config, name: entry.name, metrics: metrics)
                    hosted.append(Hosted(entry: entry, version: version, service: .classification(service)))
                    // Two images: the chain for one image and the per-thread chains for batches are both built.
                    _ = try await service.classify(prepared: [Float](repeating: 0, count: 2 * model.inputSize))
                case .speechRecognition:
                    let model = try await OffPool.run(name: "mass-load") {
                        try WhisperTranscriber(directory: directory)
                    }
                    let service = TranscriptionService(
                        transcriber: model, config: entry.config, name: entry.name, metrics: metrics)
                    hosted.append(Hosted(entry: entry, version: version, service: .transcription(service)))
                    _ = try await service.transcribe(samples: [Float](repeating: 0, count: 16000))
                }
            }
        } catch {
            for h in hosted { h.service.shutdown() }
            throw error
        }
        return hosted
    }

    // MARK: Lookup

    func slot(_ name: String) -> Slot? { slots.withLock { $0[name] } }

    /// Every model with its state, sorted by name.
    var allSlots: [(String, Slot)] { slots.withLock { $0.sorted { $0.key < $1.key } } }

    var readyNames: [String] {
        allSlots.compactMap { name, slot in if case .ready = slot { return name } else { return nil } }
    }

    /// Ready when no model is loading and none failed to load (unloaded ones were unloaded on purpose).
    var isReady: Bool {
        allSlots.allSatisfy { _, slot in
            switch slot {
            case .loading, .failed: false
            case .ready, .unloaded, .unsupported: true
            }
        }
    }

    /// The loaded versions of a model; 404 when it is unknown or not loaded.
    func versions(_ name: String, family: APIError.Family) throws -> [Hosted] {
        switch slot(name) {
        case .ready(let versions): return versions
        case nil: throw APIError(status: .notFound, message: "unknown model '\(name)'", family: family)
        case .loading:
            throw APIError(status: .serviceUnavailable, message: "model '\(name)' is loading", family: family)
        case .unloaded:
            throw APIError(status: .notFound, message: "model '\(name)' is not loaded", family: family)
        case .failed(let reason), .unsupported(let reason):
            throw APIError(status: .notFound, message: "model '\(name)' is not available: \(reason)", family: family)
        }
    }

    /// A loaded version of a model: the given one, or the latest when `version` is nil.
    func model(_ name: String, version: String? = nil, family: APIError.Family) throws -> Hosted {
        let versions = try versions(name, family: family)
        guard let version else { return versions.last! }
        guard let hosted = versions.first(where: { String($0.version) == version }) else {
            throw APIError(
                status: .notFound, message: "model '\(name)' has no loaded version '\(version)'", family: family)
        }
        return hosted
    }

    // MARK: Repository extension

    /// (Re)loads a model from the repository: a new mass.json and new version folders take effect. The old
    /// versions keep serving until the new ones are warmed up, then drain.
    func load(_ name: String) async throws {
        try claim(name)
        defer { release(name) }
        let entry: ModelRepository.Entry
        do {
            entry = try repository.entry(name)
        } catch let error as RuntimeError where error.code == .modelNotFound {
            throw APIError(status: .notFound, message: error.message, family: .kserve)
        } catch {
            throw APIError.badRequest("failed to load '\(name)': \(error)", .kserve)
        }
        guard Self.servedTasks.contains(entry.config.task) else {
            throw APIError.badRequest(
                "failed to load '\(name)': task '\(entry.config.task.rawValue)' is not served by this build", .kserve)
        }
        let previous = slots.withLock { s -> Slot? in
            let old = s[name]
            if case .ready = old {} else { s[name] = .loading }
            return old
        }
        do {
            let versions = try await Self.start(entry, metrics: metrics)
            slots.withLock { $0[name] = .ready(versions) }
        } catch {
            let reason = String(describing: error)
            slots.withLock { s in
                if case .ready = previous { s[name] = previous } else { s[name] = .failed(reason) }
            }
            publishLoadedCount()
            throw APIError.badRequest("failed to load '\(name)': \(reason)", .kserve)
        }
        if case .ready(let old) = previous { await Self.stop(old) }
        publishLoadedCount()
    }

    /// Unloads a model: new requests get 404 at once, accepted ones are answered, then its memory is returned.
    func unload(_ name: String) async throws {
        try claim(name)
        defer { release(name) }
        let previous = slots.withLock { s -> Slot? in
            let old = s[name]
            if old != nil { s[name] = .unloaded }
            return old
        }
        guard let previous else {
            guard (try? repository.entry(name)) != nil else {
                throw APIError(status: .notFound, message: "unknown model '\(name)'", family: .kserve)
            }
            slots.withLock { $0[name] = .unloaded }
            return
        }
        if case .ready(let old) = previous { await Self.stop(old) }
        publishLoadedCount()
    }

    private static func stop(_ versions: [Hosted]) async {
        for hosted in versions { hosted.service.shutdown() }
        for hosted in versions { await hosted.service.waitUntilStopped() }
        // The weights and workspaces are freed once the last request releases its reference; hand the
        // allocator's free pages back to the system so that the process's RSS drops.
        Task.detached {
            try? await Task.sleep(for: .milliseconds(50))
            cmass_release_free_memory()
        }
    }

    private func claim(_ name: String) throws {
        let claimed = busy.withLock { $0.insert(name).inserted }
        guard claimed else {
            throw APIError(
                status: .conflict, message: "model '\(name)' is already being loaded or unloaded", family: .kserve)
        }
    }

    private func release(_ name: String) { _ = busy.withLock { $0.remove(name) } }

    private func publishLoadedCount() {
        metrics.set("mass_models_loaded", Double(readyNames.count), help: "Models loaded and ready.")
    }

    // MARK: Requests

    /// Runs one inference route's work and records its count, status and duration.
    func measured(
        model: @autoclosure () -> String, route: String, family: APIError.Family, _ body: () async throws -> Response
    ) async throws -> Response {
        let start = ContinuousClock.now
        var status = 500
        defer {
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            // Unknown model names are not echoed into labels (unbounded cardinality).
            let label = slot(model()) != nil ? model() : "unknown"
            metrics.add(
                "mass_requests_total", labels: [("model", label), ("route", route), ("status", String(status))],
                help: "Inference requests by model, route and HTTP status.")
            metrics.observe(
                "mass_request_duration_seconds", seconds, labels: [("model", label), ("route", route)],
                help: "Inference request duration, from routing to response.")
        }
        do {
            let response = try await body()
            status = response.status.code
            return response
        } catch {
            let mapped = APIError.from(error, family)
            status = mapped.status.code
            throw mapped
        }
    }

    /// Checks texts against the model's limits before any work starts.
    func check(_ texts: [String], for hosted: Hosted, family: APIError.Family, param: String) throws {
        guard !texts.isEmpty else { throw APIError.badRequest("'\(param)' is empty", family, param: param) }
        guard texts.count <= hosted.entry.config.maxInputs else {
            throw APIError.badRequest(
                "\(texts.count) inputs; this model takes at most \(hosted.entry.config.maxInputs)", family, param: param
            )
        }
        if let long = texts.firstIndex(where: { $0.count > hosted.entry.config.maxInputCharacters }) {
            throw APIError.badRequest(
                "input \(long) has over \(hosted.entry.config.maxInputCharacters) characters", family, param: param)
        }
    }

    /// Stops every model: queued requests are still answered.
    func shutdown() {
        for (_, slot) in allSlots {
            if case .ready(let versions) = slot { for hosted in versions { hosted.service.shutdown() } }
        }
    }
}
