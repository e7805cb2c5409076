/// A model that maps texts to fixed-size vectors (sentence embeddings).
///
/// Threading: an instance's weights are immutable and may be shared by several compute threads; each thread
/// passes its own `EmbeddingWorkspace` and `ComputePool`.
public protocol TextEmbedding: AnyObject, Sendable {
    /// Length of every embedding.
    var dimension: Int { get }
    /// Longest input in tokens, special tokens included; longer inputs are truncated.
    var maxSequenceLength: Int { get }
}
