import ArgumentParser
import Foundation
import MassTokenizers

/// `mass tokenize`: a tokenizer.json run on texts, no model needed.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Tokenize texts with a tokenizer.json (WordPiece or SentencePiece Unigram).",
        discussion: """
            Prints one JSON object per input, in input order: {"ids": [...], "tokens": [...], "offsets": \
            [[start, end], ...]}, offsets in characters of the input as the `tokenizers` library gives them \
            (special tokens [0, 0]). With --pair the texts are read two at a time and each object also has \
            "type_ids". Without TEXT arguments, one text per line of standard input. --decode reads token ids \
            instead (one list per argument or line, comma- or space-separated) and prints the text of each.
            """)

    @Option(name: .long, help: "A tokenizer.json file, or a model folder holding one.")
    var tokenizer: String

    @Flag(name: .long, help: "Read the texts as pairs (a, b), with the tokenizer's pair template.")
    var pair = false

    @Flag(name: .long, help: "Leave out the special tokens the post-processor adds.")
    var noSpecialTokens = false

    @Option(name: .long, help: "Truncate to this many tokens, special tokens included.")
    var maxLength: Int?

    @Flag(name: .long, help: "Decode lists of token ids back to text instead.")
    var decode = false

    @Argument(help: "Texts (or id lists with --decode). Without any, one per line of standard input.")
    var texts: [String] = []

    func validate() throws {
        if let maxLength, maxLength < 1 { throw ValidationError("--max-length must be at least 1") }
        if pair && decode { throw ValidationError("--pair and --decode do not go together") }
    }

    func run() throws {
        var url = URL(fileURLWithPath: tokenizer)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
            url = url.appendingPathComponent("tokenizer.json")
        }
        let loaded = try Tokenizer(contentsOf: url)
        let inputs =
            texts.isEmpty ? try TextInput.lines(FileHandle.standardInput.readDataToEndOfFile(), source: "stdin") : texts
        if decode {
            for (n, line) in inputs.enumerated() {
                let parts = line.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "[" || $0 == "]" })
                let ids = try parts.map { part -> Int32 in
                    guard let id = Int32(part), id >= 0 else {
                        throw CLIError("input \(n + 1): '\(part)' is not a token id")
                    }
                    return id
                }
                print(ModelsCommand.json(try loaded.decode(ids, skipSpecialTokens: !noSpecialTokens)))
            }
            return
        }
        if pair {
            guard inputs.count % 2 == 0 else {
                throw CLIError("--pair needs an even number of texts, got \(inputs.count)")
            }
            for i in stride(from: 0, to: inputs.count, by: 2) {
                let e = try loaded.encode(pair: inputs[i], inputs[i + 1], maxLength: maxLength, offsets: true)
                print(Self.line(e, typeIds: true))
            }
            return
        }
        for text in inputs {
            let e = loaded.encode(text, maxLength: maxLength, offsets: true, addSpecialTokens: !noSpecialTokens)
            print(Self.line(e, typeIds: false))
        }
    }

    /// One JSON object on one line, keys in a fixed order.
    static func line(_ e: Encoding, typeIds: Bool) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        func list(_ values: [some Encodable]) -> String {
            (try? encoder.encode(values)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
        }
        var fields = [
            "\"ids\": \(list(e.ids))", "\"tokens\": \(list(e.tokens))", "\"offsets\": \(list(e.offsets ?? []))",
        ]
        if typeIds { fields.append("\"type_ids\": \(list(e.typeIds))") }
        return "{" + fields.joined(separator: ", ") + "}"
    }
}
