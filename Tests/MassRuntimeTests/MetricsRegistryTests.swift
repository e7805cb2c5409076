import MassRuntime
import Testing

/// The Prometheus text the registry exposes: label values escaped as the format asks, plain ones as they are.
@Suite struct MetricsRegistryTests {
    @Test func labelValuesAreEscapedOnlyWhereNeeded() {
        let metrics = MetricsRegistry()
        metrics.add("mass_x_total", labels: [("tenant", "acme"), ("route", "/v1/embeddings")], help: "x")
        metrics.add("mass_x_total", 2, labels: [("tenant", #"a"b\c"#), ("route", "line\nbreak")], help: "x")
        metrics.add("mass_x_total", labels: [("tenant", "acme"), ("route", "/v1/embeddings")], help: "x")
        let lines = metrics.exposition().split(separator: "\n").map(String.init)
        #expect(lines.contains(#"mass_x_total{tenant="acme",route="/v1/embeddings"} 2"#), "\(lines)")
        #expect(lines.contains(#"mass_x_total{tenant="a\"b\\c",route="line\nbreak"} 2"#), "\(lines)")
    }
}
