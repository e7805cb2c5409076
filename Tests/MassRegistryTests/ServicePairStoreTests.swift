import Foundation
import MassRegistry
import MassTesting
import Testing

/// Calibration pairs on both backends: appended in order, read back exactly, counted, limited to the newest,
/// deleted per candidate.
@Suite(.serialized) struct ServicePairStoreTests {
    typealias Backend = RegistryTests.Backend

    func pair(_ i: Int, candidate: String = "local") -> ServicePair {
        ServicePair(
            service: "svc", candidate: candidate, kind: candidate == "other" ? "logits" : "embedding",
            labels: candidate == "other" ? ["neg", "pos"] : [], input: "text \(i) — ünïcode",
            serviceOutput: [Float(i), -0.125, 1e-7], candidateOutput: [0.5, Float(i) / 3],
            serviceMilliseconds: 12.5, candidateMilliseconds: 3.25, origin: i % 2 == 0 ? "traffic" : "inputs")
    }

    @Test(arguments: Backend.allCases) func recordsReadsCountsAndDeletes(_ backend: Backend) async throws {
        let f = try await RegistryTests.Fixture.make(backend)
        defer { Task { await f.close() } }
        let store = ServicePairStore(database: f.registry.database)
        try await store.record((0..<450).map { pair($0) })
        try await store.record([pair(0, candidate: "other"), pair(1, candidate: "other")])
        let read = try await store.pairs(service: "svc", candidate: "local")
        #expect(read.count == 450)
        #expect(read.first?.input == "text 0 — ünïcode" && read.last?.input == "text 449 — ünïcode")
        #expect(read[7].serviceOutput == [7, -0.125, 1e-7] && read[7].candidateOutput == [0.5, Float(7) / 3])
        #expect(read[7].origin == "inputs" && read[7].serviceMilliseconds == 12.5 && read[7].at > 0)
        let newest = try await store.pairs(service: "svc", candidate: "local", limit: 10)
        #expect(newest.map(\.input) == (440..<450).map { "text \($0) — ünïcode" })
        #expect(
            try await store.pairs(service: "svc", candidate: "other").map(\.labels) == [
                ["neg", "pos"], ["neg", "pos"],
            ])
        #expect(read[0].labels.isEmpty)
        // Transcript pairs keep both texts (migration 5); the other kinds' texts are empty.
        try await store.record([
            ServicePair(
                service: "asr", candidate: "whisper", kind: "transcript", input: "audio 00ff, 7.86 s",
                serviceOutput: [], candidateOutput: [], serviceText: "Good morning — ünïcode.",
                candidateText: "Good mourning.", serviceMilliseconds: 900, candidateMilliseconds: 400,
                origin: "traffic")
        ])
        let speech = try await store.pairs(service: "asr", candidate: "whisper")
        #expect(
            speech.map(\.serviceText) == ["Good morning — ünïcode."]
                && speech.map(\.candidateText) == ["Good mourning."])
        #expect(speech.first?.serviceOutput == [] && read[3].serviceText.isEmpty && read[3].candidateText.isEmpty)
        #expect(try await store.delete(service: "asr") == 1)
        let counts = try await store.counts()
        #expect(counts.map(\.candidate) == ["local", "other"] && counts.map(\.pairs) == [450, 2])
        #expect(try await store.delete(service: "svc", candidate: "other") == 2)
        #expect(try await store.counts().map(\.pairs) == [450])
        #expect(try await store.delete(service: "svc") == 450)
        #expect(try await store.counts().isEmpty)
        // Outputs that are not finite numbers are refused, and nothing of the batch is written.
        await #expect(throws: RegistryError.self) {
            var bad = pair(1)
            bad.serviceOutput = [.nan]
            try await store.record([pair(0), bad])
        }
        #expect(try await store.counts().isEmpty)
    }
}
