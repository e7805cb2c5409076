public import MassTensor

/// A loaded model of any task, as the architecture registry builds it. Its weights are immutable after
/// loading and may be shared by several compute threads.
public protocol TaskModel: AnyObject, Sendable {}

/// A text model on a Transformer encoder: each compute thread passes its own workspace.
public protocol TextEncoderModel: TaskModel {
    associatedtype Workspace
    func makeWorkspace() -> Workspace
    /// Longest input in tokens, special tokens included.
    var maxSequenceLength: Int { get }
}

/// A model that maps texts to fixed-size vectors (sentence embeddings).
public protocol TextEmbedding: TextEncoderModel {
    /// Length of every embedding.
    var dimension: Int { get }
}
