/// What the post-processor adds around one sequence or a pair: `TemplateProcessing` (`[CLS] $A [SEP]`, and
/// `[CLS] $A [SEP] $B:1 [SEP]:1` for pairs), `BertProcessing` or `RobertaProcessing` (`<s> A </s> </s> B </s>`,
/// every type id 0), as template pieces with their type ids; `ByteLevel` adds nothing. RoBERTa's and ByteLevel's
/// `trim_offsets` move offsets past the spaces of byte-level tokens.
public struct PostProcessor: Sendable {
    /// One piece of a template: special tokens, or the tokens of sequence A (0) or B (1), with a type id.
    public enum Piece: Sendable {
        case special([(id: Int32, token: String)], typeId: Int32)
        case sequence(Int, typeId: Int32)
    }

    public var single: [Piece]
    /// The pair template; nil when the tokenizer defines none (pairs are then refused).
    public var pair: [Piece]?
    /// Whether offsets are trimmed of spaces, and whether the pre-tokenizer added one before the text (that one
    /// is kept on the first token); nil: offsets as they are.
    public var trimOffsets: TrimOffsets?

    public struct TrimOffsets: Sendable {
        public var addPrefixSpace: Bool
    }

    public init(single: [Piece] = [.sequence(0, typeId: 0)], pair: [Piece]? = nil, trimOffsets: TrimOffsets? = nil) {
        self.single = single
        self.pair = pair
        self.trimOffsets = trimOffsets
    }

    /// The special tokens before and after a single sequence.
    public var prefix: [(id: Int32, token: String)] { Self.specials(single, before: true) }
    public var suffix: [(id: Int32, token: String)] { Self.specials(single, before: false) }

    /// The ids of every special token the templates add.
    public var specialIds: Set<Int32> {
        Set(
            (single + (pair ?? [])).flatMap { piece -> [Int32] in
                if case .special(let s, _) = piece { s.map(\.id) } else { [] }
            })
    }

    /// How many tokens the post-processor adds to a single sequence.
    public var addedCount: Int { Self.count(single) }
    /// How many tokens it adds to a pair (nil without a pair template).
    public var pairAddedCount: Int? { pair.map(Self.count) }

    private static func count(_ pieces: [Piece]) -> Int {
        pieces.reduce(0) { n, piece in if case .special(let s, _) = piece { n + s.count } else { n } }
    }

    private static func specials(_ pieces: [Piece], before: Bool) -> [(id: Int32, token: String)] {
        guard let at = pieces.firstIndex(where: { if case .sequence = $0 { true } else { false } }) else {
            return before ? pieces.flatMap(tokens) : []
        }
        return (before ? Array(pieces[..<at]) : Array(pieces[(at + 1)...])).flatMap(tokens)
    }

    private static func tokens(_ piece: Piece) -> [(id: Int32, token: String)] {
        if case .special(let s, _) = piece { s } else { [] }
    }

    /// Applies a template to sequence A (and B): ids, tokens, type ids and, when the pieces carry them, offsets
    /// (special tokens at [0, 0]).
    func apply(_ pieces: [Piece], _ sequences: [Pieces], untruncated: Int) -> Encoding {
        var out = Encoding(ids: [], tokens: [], untruncatedCount: untruncated, typeIds: [])
        let withOffsets = sequences.first?.offsets != nil
        var offsets: [[Int]] = []
        for piece in pieces {
            switch piece {
            case .special(let s, let type):
                out.ids += s.map(\.id)
                out.tokens += s.map(\.token)
                out.typeIds += [Int32](repeating: type, count: s.count)
                if withOffsets { offsets += Array(repeating: [0, 0], count: s.count) }
            case .sequence(let which, let type) where which < sequences.count:
                out.ids += sequences[which].ids
                out.tokens += sequences[which].tokens
                out.typeIds += [Int32](repeating: type, count: sequences[which].ids.count)
                offsets += (sequences[which].offsets ?? []).map { [$0.0, $0.1] }
            case .sequence:
                continue
            }
        }
        if withOffsets { out.offsets = offsets }
        return out
    }

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
            func pieces(_ list: [[String: Any]], _ key: String) throws(TokenizerError) -> [Piece] {
                var result: [Piece] = []
                for piece in list {
                    if let sequence = piece["Sequence"] as? [String: Any] {
                        let which = sequence["id"] as? String ?? "A"
                        guard which == "A" || which == "B" else {
                            throw TokenizerError(
                                .malformed, file: file, "post_processor.\(key): sequence id must be A or B")
                        }
                        result.append(.sequence(which == "A" ? 0 : 1, typeId: Int32(sequence["type_id"] as? Int ?? 0)))
                    } else if let special = piece["SpecialToken"] as? [String: Any],
                        let name = special["id"] as? String
                    {
                        guard let ids = specials[name]?["ids"] as? [Int],
                            let tokens = specials[name]?["tokens"] as? [String],
                            ids.count == tokens.count
                        else {
                            throw TokenizerError(
                                .malformed, file: file, "post_processor.special_tokens has no ids/tokens for '\(name)'"
                            )
                        }
                        result.append(
                            .special(
                                zip(ids, tokens).map { (id: Int32($0), token: $1) },
                                typeId: Int32(special["type_id"] as? Int ?? 0)))
                    } else {
                        throw TokenizerError(
                            .malformed, file: file, "post_processor.\(key) has an unknown piece \(piece)")
                    }
                }
                return result
            }
            let pair = try (json["pair"] as? [[String: Any]]).map { list throws(TokenizerError) in
                try pieces(list, "pair")
            }
            return PostProcessor(single: try pieces(single, "single"), pair: pair)
        case "BertProcessing", "RobertaProcessing":
            guard let cls = json["cls"] as? [Any], cls.count == 2, let clsToken = cls[0] as? String,
                let clsId = cls[1] as? Int, let sep = json["sep"] as? [Any], sep.count == 2,
                let sepToken = sep[0] as? String, let sepId = sep[1] as? Int
            else {
                throw TokenizerError(.malformed, file: file, "\(type) needs cls and sep as [token, id]")
            }
            let c = [(id: Int32(clsId), token: clsToken)]
            let s = [(id: Int32(sepId), token: sepToken)]
            let single: [Piece] = [.special(c, typeId: 0), .sequence(0, typeId: 0), .special(s, typeId: 0)]
            if type == "RobertaProcessing" {
                return PostProcessor(
                    single: single,
                    pair: single + [.special(s, typeId: 0), .sequence(1, typeId: 0), .special(s, typeId: 0)],
                    trimOffsets: json["trim_offsets"] as? Bool ?? true
                        ? TrimOffsets(addPrefixSpace: json["add_prefix_space"] as? Bool ?? true) : nil)
            }
            return PostProcessor(
                single: single, pair: single + [.sequence(1, typeId: 1), .special(s, typeId: 1)])
        case "ByteLevel":
            return PostProcessor(
                single: [.sequence(0, typeId: 0)], pair: [.sequence(0, typeId: 0), .sequence(1, typeId: 1)],
                trimOffsets: json["trim_offsets"] as? Bool ?? true
                    ? TrimOffsets(addPrefixSpace: json["add_prefix_space"] as? Bool ?? true) : nil)
        default:
            throw TokenizerError(
                .unsupported, file: file,
                "post_processor type '\(type)' is not supported (supported: TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel)"
            )
        }
    }
}
