import Foundation
import MassModels
import MassTensor
import MassTesting
import MassTokenizers
import Testing

/// The real all-MiniLM-L6-v2 against sentence-transformers' golden outputs (gates from fixtures/README.md).
@Suite(.serialized) struct MiniLMParityTests {
    static let model: SentenceEmbedder? = try? SentenceEmbedder(
        directory: MiniLMFixture.modelDirectory, encoder: BertModel.encoder)

    func embedder() throws -> SentenceEmbedder {
        try #require(Self.model, "run 'make models' first: \(MiniLMFixture.modelDirectory.path) did not load")
    }

    @Test(arguments: [1, 2])
    func everyCaseMatchesTheGoldenEmbedding(threads: Int) throws {
        let model = try embedder()
        let fixture = try MiniLMFixture.load()
        let pool = ComputePool(threads: threads)
        let workspace = EncoderWorkspace()
        for c in fixture.cases {
            let ids = model.tokenize(c.text).ids
            #expect(ids == c.input_ids, "case \(c.id)")
            let embedding = try model.embed([ids], workspace: workspace, pool: pool)[0]
            let cosine = Comparison.cosine(embedding, c.embedding)
            let diff = Comparison.maxAbsDiff(embedding, c.embedding)
            #expect(cosine >= 0.99999, "case \(c.id): cosine \(cosine)")
            #expect(diff <= 1e-4, "case \(c.id): max |diff| \(diff)")
        }
    }

    /// int8 linear layers (docs/compression.md): every golden case with text within cosine 0.995 of
    /// sentence-transformers' fp32 embedding; the two inputs that are only [CLS] [SEP] (empty, white space)
    /// measure 0.9935 and are held to 0.99. A ragged batch gives each text exactly what it gets alone
    /// (activations are quantised per token row, so batching cannot move them).
    @Test func int8StaysWithinTheGateAndBatchingDoesNotMoveIt() throws {
        let model = try SentenceEmbedder(
            directory: MiniLMFixture.modelDirectory, encoder: BertModel.encoder(precision: .int8))
        let fixture = try MiniLMFixture.load()
        let pool = ComputePool(threads: 2)
        let workspace = EncoderWorkspace()
        let ids = fixture.cases.map { model.tokenize($0.text).ids }
        let batched = try model.embed(ids, workspace: workspace, pool: pool)
        var worst = 1.0
        for (i, c) in fixture.cases.enumerated() {
            let alone = try model.embed([ids[i]], workspace: workspace, pool: pool)[0]
            #expect(alone == batched[i], "case \(c.id)")
            let cosine = Double(Comparison.cosine(alone, c.embedding))
            worst = min(worst, cosine)
            let gate = c.n_tokens > 2 ? 0.995 : 0.99
            #expect(cosine >= gate && cosine < 0.99999, "case \(c.id): cosine \(cosine)")
        }
        print("MiniLM int8: lowest cosine to the fp32 goldens \(worst) over \(fixture.cases.count) cases")
    }

    @Test func hiddenStatesOfEveryLayer() throws {
        let model = try embedder()
        let fixture = try MiniLMFixture.load()
        for h in fixture.hidden_states {
            let golden = try FixturePaths.readFloats(
                FixturePaths.fixtures.appendingPathComponent("text").appendingPathComponent(h.all_hidden_states.file))
            let (layers, tokens, dim) = (
                h.all_hidden_states.shape[0], h.all_hidden_states.shape[1], h.all_hidden_states.shape[2]
            )
            #expect(golden.count == layers * tokens * dim)
            var worst = [Float](repeating: 0, count: layers)
            let bert = try #require(model.encoder as? BertModel)
            _ = try bert.forward([h.input_ids], workspace: EncoderWorkspace(), pool: ComputePool(threads: 1)) {
                layer, states in
                let ours = Array(UnsafeBufferPointer(start: states, count: tokens * dim))
                worst[layer] = Comparison.maxAbsDiff(
                    ours, Array(golden[(layer * tokens * dim)..<((layer + 1) * tokens * dim)]))
                if layer == layers - 1 {
                    #expect(
                        Comparison.maxAbsDiff(ours, h.last_hidden_state.flatMap { $0 }) <= 1e-3,
                        "\(h.id) last_hidden_state")
                }
            }
            for (layer, diff) in worst.enumerated() {
                #expect(diff <= 1e-3, "\(h.id) layer \(layer): max |diff| \(diff)")
            }
        }
    }

    /// An input embedded alone equals the same input inside a length-mixed ragged batch (which also takes the
    /// OpenBLAS path for its dense layers while the single input takes the packed kernel).
    @Test(arguments: [1, 2])
    func batchedEqualsSingle(threads: Int) throws {
        let model = try embedder()
        let fixture = try MiniLMFixture.load()
        let pool = ComputePool(threads: threads)
        let workspace = EncoderWorkspace()
        let sequences = fixture.cases.map(\.input_ids)
        let batched = try model.embed(sequences, workspace: workspace, pool: pool)
        for (i, ids) in sequences.enumerated() {
            let single = try model.embed([ids], workspace: workspace, pool: pool)[0]
            let diff = Comparison.maxAbsDiff(single, batched[i])
            #expect(diff <= 1e-5, "case \(fixture.cases[i].id): batched vs single \(diff)")
        }
    }

    @Test func refusesSequencesLongerThanThePositionTable() throws {
        let model = try embedder()
        #expect(throws: ModelError.self) {
            _ = try model.embed(
                [[Int32](repeating: 1000, count: 513)], workspace: EncoderWorkspace(), pool: ComputePool(threads: 1))
        }
        #expect(throws: ModelError.self) {
            _ = try model.embed([[101, 40000, 102]], workspace: EncoderWorkspace(), pool: ComputePool(threads: 1))
        }
    }
}

@Suite struct PoolingTests {
    // Three tokens of width 2.
    let states: [Float] = [1, 2, 3, -4, 5, 0]

    func pooled(_ mode: Pooling.Mode, normalize: Bool) -> [Float] {
        var out = [Float](repeating: .nan, count: 2)
        Pooling(mode: mode, normalize: normalize).pool(states, rows: 3, dim: 2, into: &out)
        return out
    }

    @Test func modes() {
        #expect(pooled(.mean, normalize: false) == [3, -2.0 / 3])
        #expect(pooled(.cls, normalize: false) == [1, 2])
        #expect(pooled(.max, normalize: false) == [5, 2])
        #expect(
            Comparison.maxAbsDiff(
                pooled(.max, normalize: true), [5 / 29.0.squareRoot(), 2 / 29.0.squareRoot()].map(Float.init)) < 1e-7)
    }

    @Test func zeroVectorStaysFinite() {
        var out = [Float](repeating: .nan, count: 2)
        Pooling(mode: .mean, normalize: true).pool([0, 0], rows: 1, dim: 2, into: &out)
        #expect(out == [0, 0])
    }
}
