import Foundation
import MassTesting
import Testing

/// `mass embed` end to end, as a user runs it: the built binary, texts on standard input or as arguments.
@Suite struct EmbedCommandTests {
    static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["MASS_BIN"] { return URL(fileURLWithPath: path) }
        let candidates = ["release", "debug"].map {
            FixturePaths.packageRoot.appendingPathComponent(".build/\($0)/mass")
        }
        let existing = candidates.filter { FileManager.default.fileExists(atPath: $0.path) }
        let newest = existing.max {
            let a =
                (try? $0.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate) ?? .distantPast
            let b =
                (try? $1.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate) ?? .distantPast
            return a < b
        }
        return newest ?? candidates[0]
    }

    struct Output {
        let status: Int32
        let stdout: Data
        let stderr: String
    }

    func run(_ arguments: [String], stdin: Data = Data()) throws -> Output {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = arguments
        let input = Pipe(), output = Pipe(), error = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = error
        try process.run()
        input.fileHandleForWriting.write(stdin)
        try input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: out, stderr: String(decoding: err, as: UTF8.self))
    }

    struct Line: Decodable {
        let index: Int
        let tokens: Int
        let embedding: [Float]
    }

    @Test func standardInputReproducesTheGoldenEmbeddings() throws {
        let fixture = try MiniLMFixture.load()
        // One text per line: skip the cases whose text has a line break of its own.
        let cases = fixture.cases.filter { !$0.text.contains("\n") && !$0.text.contains("\r") }
        let input = cases.map(\.text).joined(separator: "\n") + "\n"
        let result = try run(["embed", "--model", MiniLMFixture.modelDirectory.path], stdin: Data(input.utf8))
        #expect(result.status == 0, "\(result.stderr)")
        let lines = String(decoding: result.stdout, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == cases.count)
        for (line, c) in zip(lines, cases) {
            let parsed = try JSONDecoder().decode(Line.self, from: Data(line.utf8))
            #expect(parsed.tokens == c.n_tokens, "case \(c.id)")
            #expect(Comparison.maxAbsDiff(parsed.embedding, c.embedding) <= 1e-4, "case \(c.id)")
        }
    }

    @Test func argumentsAreEmbeddedInOrder() throws {
        let fixture = try MiniLMFixture.load()
        let picked = [fixture.cases[1], fixture.cases[0], fixture.cases[13]]  // includes the empty text
        let result = try run(["embed", "--model", MiniLMFixture.modelDirectory.path] + picked.map(\.text))
        #expect(result.status == 0, "\(result.stderr)")
        let lines = String(decoding: result.stdout, as: UTF8.self).split(separator: "\n")
        for (i, (line, c)) in zip(lines, picked).enumerated() {
            let parsed = try JSONDecoder().decode(Line.self, from: Data(line.utf8))
            #expect(parsed.index == i)
            #expect(Comparison.maxAbsDiff(parsed.embedding, c.embedding) <= 1e-4, "case \(c.id)")
        }
    }

    @Test func invalidUTF8IsReportedWithItsLineNumber() throws {
        var input = Data("fine\nstill fine\n".utf8)
        input.append(contentsOf: [0x66, 0xC3, 0x28, 0x0A])  // line 3: an invalid two-byte sequence
        let result = try run(["embed", "--model", MiniLMFixture.modelDirectory.path], stdin: input)
        #expect(result.status != 0)
        #expect(result.stderr.contains("line 3") && result.stderr.contains("UTF-8"), "\(result.stderr)")
        #expect(result.stdout.isEmpty)
    }

    @Test func missingModelFolderIsAClearError() throws {
        let result = try run(["embed", "--model", "/nonexistent/model", "hello"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("/nonexistent/model"), "\(result.stderr)")
    }
}
