/// What the post-processor adds around a single sequence: `TemplateProcessing` (`[CLS] $A [SEP]`) or
/// `BertProcessing`, reduced to the special tokens before and after the sequence.
public struct PostProcessor: Sendable {
    public var prefix: [(id: Int32, token: String)]
    public var suffix: [(id: Int32, token: String)]

    public init(prefix: [(id: Int32, token: String)] = [], suffix: [(id: Int32, token: String)] = []) {
        self.prefix = prefix
        self.suffix = suffix
    }

    /// How many tokens the post-processor adds to a single sequence.
    public var addedCount: Int { prefix.count + suffix.count }

    static func parse(_ json: [String: Any]?, vocabulary: [String: Int32], file: String) throws(TokenizerError)
        -> PostProcessor
    {
        guard let json else { return PostProcessor() }
        let type = json["type"] as? String ?? "<missing>"
        switch type {
        case "TemplateProcessing":
            guard let single = json["single"] as? [[String: Any]] else {
                throw TokenizerError(.malformed, file: file, "post_processor.single must be a list")
            }
            let specials = json["special_tokens"] as? [String: [String: Any]] ?? [:]
            var result = PostProcessor()
            var seenSequence = false
            for piece in single {
                if piece["Sequence"] != nil {
                    seenSequence = true
                } else if let special = piece["SpecialToken"] as? [String: Any], let name = special["id"] as? String {
                    guard let ids = specials[name]?["ids"] as? [Int],
                        let tokens = specials[name]?["tokens"] as? [String],
                        ids.count == tokens.count
                    else {
                        throw TokenizerError(
                            .malformed, file: file, "post_processor.special_tokens has no ids/tokens for '\(name)'")
                    }
                    let entries = zip(ids, tokens).map { (id: Int32($0), token: $1) }
                    if seenSequence { result.suffix += entries } else { result.prefix += entries }
                } else {
                    throw TokenizerError(.malformed, file: file, "post_processor.single has an unknown piece \(piece)")
                }
            }
            return result
        case "BertProcessing":
            guard let cls = json["cls"] as? [Any], cls.count == 2, let clsToken = cls[0] as? String,
                let clsId = cls[1] as? Int, let sep = json["sep"] as? [Any], sep.count == 2,
                let sepToken = sep[0] as? String, let sepId = sep[1] as? Int
            else {
                throw TokenizerError(.malformed, file: file, "BertProcessing needs cls and sep as [token, id]")
            }
            return PostProcessor(prefix: [(Int32(clsId), clsToken)], suffix: [(Int32(sepId), sepToken)])
        default:
            throw TokenizerError(
                .unsupported, file: file,
                "post_processor type '\(type)' is not supported (supported: TemplateProcessing, BertProcessing)")
        }
    }
}
