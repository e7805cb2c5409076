public import Foundation

/// An error in a training dataset, naming the file and the line (or entry) so the user can fix it before any
/// training starts.
public struct DatasetError: Error, Sendable, CustomStringConvertible {
    public var file: String
    /// 1-based line (text files) or entry number; nil when the problem is the whole file.
    public var line: Int?
    public var message: String

    public init(file: String, line: Int? = nil, _ message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String { line.map { "\(file):\($0): \(message)" } ?? "\(file): \(message)" }
}

/// Labelled texts (or text pairs) for classification: from JSON Lines (`{"text": ..., "label": ...}`, optionally
/// `"text_pair"`) or CSV with a header naming the columns. Labels are names or integers; names are numbered in
/// sorted order unless the caller gives the list. Every row is checked while reading: valid UTF-8, the columns
/// present, no empty text, a known label; the first problem is reported with its line.
public struct TextDataset: Sendable {
    public struct Example: Sendable, Equatable {
        public var text: String
        public var pair: String?
        public var label: Int

        public init(text: String, pair: String? = nil, label: Int) {
            self.text = text
            self.pair = pair
            self.label = label
        }
    }

    public var examples: [Example]
    /// Label names by index.
    public var labels: [String]

    /// Column (or key) names.
    public struct Columns: Sendable {
        public var text = "text"
        public var pair: String? = nil
        public var label = "label"
        public init(text: String = "text", pair: String? = nil, label: String = "label") {
            self.text = text
            self.pair = pair
            self.label = label
        }
    }

    public init(examples: [Example], labels: [String]) {
        self.examples = examples
        self.labels = labels
    }

    /// Reads a `.jsonl` or `.csv` file (by extension). `labels`, when given, fixes the label names and their order:
    /// a row with another label is refused, or skipped with `skipOtherLabels` (e.g. keeping two of a file's three
    /// categories); else the names found, sorted (integer labels keep their values).
    public init(
        contentsOf url: URL, columns: Columns = Columns(), labels: [String]? = nil, skipOtherLabels: Bool = false
    ) throws(DatasetError) {
        let file = url.path
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw DatasetError(file: file, "cannot read (\(error.localizedDescription))")
        }
        let rows: [(line: Int, fields: [String: Any])]
        switch url.pathExtension.lowercased() {
        case "jsonl", "ndjson": rows = try Self.jsonLines(data, file: file)
        case "csv": rows = try CSV.records(data, file: file)
        case let other: throw DatasetError(file: file, "unknown dataset format '.\(other)' (use .jsonl or .csv)")
        }
        guard !rows.isEmpty else { throw DatasetError(file: file, "has no rows") }
        var raw: [(text: String, pair: String?, label: String, line: Int)] = []
        for (line, fields) in rows {
            func text(_ key: String) throws(DatasetError) -> String {
                guard let value = fields[key] else { throw DatasetError(file: file, line: line, "no '\(key)' column") }
                guard let string = value as? String else {
                    throw DatasetError(file: file, line: line, "'\(key)' is not a string")
                }
                guard !string.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                    throw DatasetError(file: file, line: line, "'\(key)' is empty")
                }
                return string
            }
            let label: String
            switch fields[columns.label] {
            case nil, is NSNull: throw DatasetError(file: file, line: line, "no '\(columns.label)' column")
            case let s as String where !s.isEmpty: label = s
            // JSON true/false arrive as NSNumber too (objCType "c"): not labels.
            case let n as NSNumber
            where String(cString: n.objCType) != "c" && n.doubleValue == n.doubleValue.rounded() && n.doubleValue >= 0:
                label = String(n.intValue)
            default: throw DatasetError(file: file, line: line, "'\(columns.label)' is not a label name or an integer")
            }
            // Rows of other labels are left out before their text is looked at.
            if skipOtherLabels, let labels, !labels.contains(label) { continue }
            raw.append(
                (try text(columns.text), try columns.pair.map { k throws(DatasetError) in try text(k) }, label, line))
        }
        let names: [String]
        if let labels {
            names = labels
        } else {
            let found = Set(raw.map(\.label))
            // All integers (as written by String(Int)): the labels are 0...max, as in the data.
            let numbers = found.compactMap { s in Int(s).flatMap { String($0) == s && $0 >= 0 ? $0 : nil } }
            if numbers.count == found.count, let top = numbers.max() {
                names = (0...top).map(String.init)
            } else {
                names = found.sorted()
            }
        }
        let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        var examples: [Example] = []
        examples.reserveCapacity(raw.count)
        for row in raw {
            guard let label = index[row.label] else {
                throw DatasetError(
                    file: file, line: row.line,
                    "unknown label '\(row.label)' (labels: \(names.joined(separator: ", ")))")
            }
            examples.append(Example(text: row.text, pair: row.pair, label: label))
        }
        guard !examples.isEmpty else { throw DatasetError(file: file, "has no rows with the labels \(names)") }
        self.examples = examples
        self.labels = names
    }

    /// Unlabelled texts (distillation): a `.txt` file's non-blank lines, or the `column` of a `.jsonl` or `.csv`
    /// file; invalid UTF-8, a missing column or an empty text (unless `skipEmpty`) refused with its line.
    public static func texts(contentsOf url: URL, column: String = "text", skipEmpty: Bool = false) throws(DatasetError)
        -> [String]
    {
        let file = url.path
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw DatasetError(file: file, "cannot read (\(error.localizedDescription))")
        }
        var texts: [String] = []
        switch url.pathExtension.lowercased() {
        case "txt":
            var lineNumber = 0
            for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
                lineNumber += 1
                guard let text = String(validating: line, as: UTF8.self) else {
                    throw DatasetError(file: file, line: lineNumber, "is not valid UTF-8")
                }
                let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
                if !trimmed.isEmpty { texts.append(trimmed) }
            }
        case "jsonl", "ndjson", "csv":
            let rows =
                try url.pathExtension.lowercased() == "csv"
                ? CSV.records(data, file: file) : jsonLines(data, file: file)
            for (line, fields) in rows {
                guard let value = fields[column] else {
                    throw DatasetError(file: file, line: line, "no '\(column)' column")
                }
                guard let text = value as? String else {
                    throw DatasetError(file: file, line: line, "'\(column)' is not a text")
                }
                if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                    if skipEmpty { continue }
                    throw DatasetError(file: file, line: line, "'\(column)' is empty")
                }
                texts.append(text)
            }
        case let other:
            throw DatasetError(file: file, "unknown text format '.\(other)' (use .txt, .jsonl or .csv)")
        }
        guard !texts.isEmpty else { throw DatasetError(file: file, "has no texts") }
        return texts
    }

    /// One JSON object per non-blank line.
    static func jsonLines(_ data: Data, file: String) throws(DatasetError) -> [(line: Int, fields: [String: Any])] {
        var rows: [(line: Int, fields: [String: Any])] = []
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            guard String(validating: line, as: UTF8.self) != nil else {
                throw DatasetError(file: file, line: lineNumber, "is not valid UTF-8")
            }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                throw DatasetError(file: file, line: lineNumber, "is not a JSON object")
            }
            rows.append((lineNumber, object))
        }
        return rows
    }
}

/// RFC 4180 CSV: a header row, then records; fields may be quoted (with "" for a quote, and line breaks inside).
enum CSV {
    static func records(_ data: Data, file: String) throws(DatasetError) -> [(line: Int, fields: [String: Any])] {
        guard let text = String(validating: data, as: UTF8.self) else {
            // Name the first bad line.
            var line = 1
            for piece in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
                if String(validating: piece, as: UTF8.self) == nil { break }
                line += 1
            }
            throw DatasetError(file: file, line: line, "is not valid UTF-8")
        }
        var records: [(line: Int, values: [String])] = []
        var field = ""
        var values: [String] = []
        var quoted = false
        var line = 1
        var recordLine = 1
        var fieldStarted = false
        var scalars = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        func endRecord() {
            values.append(field)
            if !(values.count == 1 && values[0].isEmpty) { records.append((recordLine, values)) }
            values = []
            field = ""
            fieldStarted = false
        }
        while let c = pending ?? scalars.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    let next = scalars.next()
                    if next == "\"" {
                        field.unicodeScalars.append("\"")
                    } else {
                        quoted = false
                        pending = next
                    }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
                continue
            }
            switch c {
            case "\"" where !fieldStarted:
                quoted = true
                fieldStarted = true
            case ",":
                values.append(field)
                field = ""
                fieldStarted = false
            case "\r":
                continue
            case "\n":
                endRecord()
                line += 1
                recordLine = line
            default:
                field.unicodeScalars.append(c)
                fieldStarted = true
            }
        }
        if quoted { throw DatasetError(file: file, line: recordLine, "a quoted field is not closed") }
        if fieldStarted || !values.isEmpty || !field.isEmpty { endRecord() }
        guard let header = records.first else { throw DatasetError(file: file, "is empty") }
        var rows: [(line: Int, fields: [String: Any])] = []
        for (line, values) in records.dropFirst() {
            guard values.count == header.values.count else {
                throw DatasetError(
                    file: file, line: line, "has \(values.count) fields; the header has \(header.values.count)")
            }
            rows.append(
                (line, Dictionary(zip(header.values, values.map { $0 as Any }), uniquingKeysWith: { a, _ in a })))
        }
        return rows
    }
}

extension TextDataset {
    /// The labelled texts a configuration's `dataset` names (`mass train`'s text tasks, `mass select`).
    public init(_ dataset: TrainingConfig.Dataset) throws(DatasetError) {
        try self.init(
            contentsOf: URL(fileURLWithPath: dataset.path),
            columns: .init(text: dataset.text ?? "text", pair: dataset.pair, label: dataset.label ?? "label"),
            labels: dataset.labels, skipOtherLabels: dataset.skipOtherLabels ?? false)
    }
}
