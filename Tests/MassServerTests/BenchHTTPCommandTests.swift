import Foundation
import MassTesting
import Testing

/// `mass bench http` against a live server: it reports real requests for both APIs and refuses a wrong model
/// before the clock starts.
@Suite(.serialized) struct BenchHTTPCommandTests {
    /// Runs `mass` with the arguments; returns its exit status, standard output and standard error.
    func mass(_ arguments: [String]) throws -> (Int32, String, String) { try BinaryRunner.separate(arguments) }

    @Test func reportsThroughputLatencyAndErrors() throws {
        let s = try LiveServer()
        defer { s.stop() }
        for api in ["openai", "kserve"] {
            let (status, output, error) = try mass([
                "bench", "http", "--url", "http://127.0.0.1:\(s.port)", "--model", "all-MiniLM-L6-v2",
                "--concurrency", "4", "--duration", "1", "--warmup", "0.2", "--api", api, "--batch", "2", "--json",
            ])
            #expect(status == 0, "\(error)")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
            let requests = report["requests"] as? Int ?? 0
            #expect(requests > 4, "\(output)")
            #expect((report["errors"] as? [String: Any])?.isEmpty == true, "\(output)")
            let latency = try #require(report["latency_ms"] as? [String: Double])
            #expect(latency["p50"]! > 0 && latency["p50"]! <= latency["p99"]! && latency["p99"]! <= latency["max"]!)
            #expect(report["texts_per_s"] as? Double == (report["requests_per_s"] as? Double).map { $0 * 2 })
        }
        // Images, multipart to the task route.
        let (imageStatus, imageOutput, imageError) = try mass([
            "bench", "http", "--url", "http://127.0.0.1:\(s.port)", "--model", "efficientnet-lite0", "--api", "images",
            "--image", EfficientNetFixture.url("rocket.jpg").path, "--concurrency", "2", "--duration", "1", "--warmup",
            "0.2", "--json",
        ])
        #expect(imageStatus == 0, "\(imageError)")
        let images = try #require(try JSONSerialization.jsonObject(with: Data(imageOutput.utf8)) as? [String: Any])
        #expect((images["requests"] as? Int ?? 0) > 2 && (images["errors"] as? [String: Any])?.isEmpty == true)
        // The server counted what the generator sent (plus its one check request per run).
        let counted = try s.metric(
            #"mass_requests_total{model="all-MiniLM-L6-v2",route="/v1/embeddings",status="200"}"#)
        #expect((counted ?? 0) > 5)

        let (status, _, error) = try mass([
            "bench", "http", "--url", "http://127.0.0.1:\(s.port)", "--model", "nope", "--duration", "1",
        ])
        #expect(status != 0 && error.contains("404") && error.contains("unknown model"), "\(error)")
    }

    @Test func refusesABadURL() throws {
        let (status, _, error) = try mass(["bench", "http", "--url", "https://example.com", "--model", "m"])
        #expect(status != 0 && error.contains("http://HOST:PORT"), "\(error)")
    }
}
