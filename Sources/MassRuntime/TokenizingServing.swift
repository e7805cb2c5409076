public import MassModels
public import MassTokenizers

/// A served text model whose tokenizer the tokenization routes (`POST /tokenize`, `POST /decode`) use: every
/// local text model (embedding, classification, rerank). Service-type models have none.
public protocol TokenizingServing: ServedModel {
    var tokenizer: Tokenizer { get }
    /// Longest input the model takes, special tokens included.
    var maxSequenceLength: Int { get }
}

extension EmbeddingService: TokenizingServing {
    public var tokenizer: Tokenizer { model.tokenizer }
    public var maxSequenceLength: Int { model.maxSequenceLength }
}

extension TextClassificationService: TokenizingServing {
    public var tokenizer: Tokenizer { classifier.tokenizer }
    public var maxSequenceLength: Int { classifier.maxSequenceLength }
}

extension RerankService: TokenizingServing {
    public var tokenizer: Tokenizer { classifier.tokenizer }
    public var maxSequenceLength: Int { classifier.maxSequenceLength }
}
