import Foundation

/// SentencePiece's compiled normalization rules (`precompiled_charsmap` of a `Precompiled` normalizer, NFKC plus
/// the model's own rules): a little-endian u32 trie size, a darts-clone double-array trie over UTF-8 bytes of that
/// size, then the replacement strings, each ending in a zero byte; a trie leaf's value is its string's offset.
///
/// Applied as Hugging Face tokenizers applies it: per extended grapheme cluster, a cluster under 6 bytes is
/// replaced whole when the trie has a key that is a prefix of it (the shortest such key decides); otherwise each
/// character on its own, the same way.
public struct PrecompiledCharsMap: Sendable {
    let units: [UInt32]
    let strings: [UInt8]

    public init(base64: String, file: String) throws(TokenizerError) {
        guard let data = Data(base64Encoded: base64) else {
            throw TokenizerError(.malformed, file: file, "precompiled_charsmap is not base64")
        }
        let bytes = [UInt8](data)
        guard bytes.count >= 4 else { throw TokenizerError(.malformed, file: file, "precompiled_charsmap is empty") }
        let size = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
        guard size % 4 == 0, size >= 4, 4 + size <= bytes.count else {
            throw TokenizerError(.malformed, file: file, "precompiled_charsmap's trie size \(size) does not fit")
        }
        units = stride(from: 4, to: 4 + size, by: 4).map {
            UInt32(bytes[$0]) | UInt32(bytes[$0 + 1]) << 8 | UInt32(bytes[$0 + 2]) << 16 | UInt32(bytes[$0 + 3]) << 24
        }
        strings = Array(bytes[(4 + size)...])
    }

    private static func offset(_ unit: UInt32) -> Int { Int((unit >> 10) << ((unit & (1 << 9)) >> 6)) }

    /// The value of the shortest key that is a prefix of `key` (stopping at a zero byte), if any.
    func firstPrefixValue(_ key: some Sequence<UInt8>) -> Int? {
        var node = Self.offset(units[0])
        for c in key {
            if c == 0 { return nil }
            node ^= Int(c)
            guard node < units.count else { return nil }
            let unit = units[node]
            guard unit & 0x8000_00FF == UInt32(c) else { return nil }
            node ^= Self.offset(unit)
            if (unit >> 8) & 1 == 1 {
                guard node < units.count else { return nil }
                return Int(units[node] & 0x7FFF_FFFF)
            }
        }
        return nil
    }

    /// The replacement for a chunk whose bytes start with a key, or nil to leave it alone.
    func replacement(_ utf8: some Sequence<UInt8>) -> [Unicode.Scalar]? {
        guard let start = firstPrefixValue(utf8), start <= strings.count else { return nil }
        let end = strings[start...].firstIndex(of: 0) ?? strings.count
        return Array(String(decoding: strings[start..<end], as: UTF8.self).unicodeScalars)
    }

    /// Normalizes `text`, keeping the alignments as the reference does (a replacement of n characters by m: the
    /// first m replace, extra ones are insertions, missing ones are removed after the last new character).
    func normalize(_ text: inout NormalizedText) {
        var changes: [(Unicode.Scalar, Int)] = []
        changes.reserveCapacity(text.scalars.count)
        var modified = false
        func replace(_ old: Int, _ new: [Unicode.Scalar]) {
            modified = true
            changes += new.map { ($0, 0) }
            let diff = new.count - old
            if diff > 0 {
                for i in (changes.count - diff)..<changes.count { changes[i].1 = 1 }
            } else if diff < 0, !changes.isEmpty {
                changes[changes.count - 1].1 += diff
            }
        }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: text.scalars)
        for grapheme in String(view) {
            let utf8 = grapheme.utf8
            if utf8.count < 6, let new = replacement(utf8) {
                replace(grapheme.unicodeScalars.count, new)
                continue
            }
            for scalar in grapheme.unicodeScalars {
                if let new = replacement(String(scalar).utf8) {
                    replace(1, new)
                } else {
                    changes.append((scalar, 0))
                }
            }
        }
        if modified { text.transform(changes) }
    }
}
