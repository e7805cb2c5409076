import Foundation
import MassModels
import MassTensor
import MassTesting
import MassTokenizers
import Testing

/// all-mpnet-base-v2 (MPNet, laid out by `scripts/fetch-models.sh models-extra extra`) loaded through the
/// architecture registry, against sentence-transformers on the same texts (goldens from
/// scripts/make-mpnet-goldens.py): token ids exact, embeddings within float32 noise, a ragged batch equal to each
/// text alone, the reference's relative-position buckets, the RoBERTa-style pair template.
@Suite(.serialized) struct MPNetParityTests {
    static let folder = FixturePaths.extraModels.appendingPathComponent("all-mpnet-base-v2/1")

    struct Golden: Decodable {
        struct Case: Decodable {
            let id: String
            let text: String
            let ids: [Int32]
            let embedding: [Float]
        }
        struct Buckets: Decodable {
            let from: Int
            let values: [Int]
        }
        struct Pair: Decodable {
            let a: String
            let b: String
            let ids: [Int32]
            let type_ids: [Int32]
        }
        let cases: [Case]
        let buckets: Buckets
        let pairs: [Pair]
    }

    static func golden() throws -> Golden {
        try JSONDecoder().decode(
            Golden.self,
            from: Data(
                contentsOf: FixturePaths.packageRoot.appendingPathComponent(
                    "Tests/MassModelsTests/Goldens/all-mpnet-base-v2.json")))
    }

    static func load(_ precision: Linear.Precision = .float32) throws -> SentenceEmbedder {
        let model = try ArchitectureRegistry.standard.load(Self.folder, task: .textEmbedding, precision: precision)
        return try #require(model as? SentenceEmbedder)
    }

    @Test func embeddingsMatchSentenceTransformers() throws {
        let model = try Self.load()
        #expect(model.encoder is MPNetModel)
        #expect(model.dimension == 768 && model.maxSequenceLength == 384)
        let golden = try Self.golden()
        #expect(golden.cases.count == 29)
        let pool = ComputePool(threads: 2)
        let workspace = EncoderWorkspace()
        var alone: [[Float]] = []
        var worst = (cosine: 1.0, diff: 0.0)
        for c in golden.cases {
            let ids = model.tokenize(c.text).ids
            #expect(ids == c.ids, "\(c.id): token ids")
            let embedding = try model.embed([c.ids], workspace: workspace, pool: pool)[0]
            let cosine = Comparison.cosine(embedding, c.embedding)
            let diff = Comparison.maxAbsDiff(embedding, c.embedding)
            // Measured: lowest cosine 0.999999999996, largest |diff| 3.5e-7.
            #expect(cosine >= 0.99999 && diff <= 1e-6, "\(c.id): cosine \(cosine), max |diff| \(diff)")
            alone.append(embedding)
            worst = (min(worst.cosine, cosine), max(worst.diff, Double(diff)))
        }
        print("all-mpnet-base-v2: lowest cosine \(worst.cosine), largest |diff| \(worst.diff)")
        // A ragged batch (lengths 2 to 384, both attention paths) gives each text what it gets alone.
        let batched = try model.embed(golden.cases.map(\.ids), workspace: workspace, pool: pool)
        for (a, b) in zip(alone, batched) { #expect(Comparison.maxAbsDiff(a, b) <= 1e-6) }
    }

    @Test func relativePositionBucketsMatchTheReference() throws {
        let golden = try Self.golden()
        #expect(golden.buckets.values.count == 1023)
        let ours = golden.buckets.values.indices.map { MPNetModel.bucket(golden.buckets.from + $0, buckets: 32) }
        #expect(ours == golden.buckets.values)
    }

    @Test func pairsFollowTheRobertaTemplate() throws {
        let tokenizer = try Tokenizer(contentsOf: Self.folder.appendingPathComponent("tokenizer.json"))
        for pair in try Self.golden().pairs {
            let encoding = try tokenizer.encode(pair: pair.a, pair.b)
            #expect(encoding.ids == pair.ids && encoding.typeIds == pair.type_ids, "\(pair.a) / \(pair.b)")
        }
    }
}
