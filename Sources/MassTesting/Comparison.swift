import Foundation

/// Comparison helpers for parity tests.
public enum Comparison {
    public static func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count, "maxAbsDiff of \(a.count) and \(b.count) elements")
        var m: Float = 0
        for i in a.indices { m = max(m, abs(a[i] - b[i])) }
        return m
    }

    public static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count, "cosine of \(a.count) and \(b.count) elements")
        var dot = 0.0
        var na = 0.0
        var nb = 0.0
        for i in a.indices {
            dot += Double(a[i]) * Double(b[i])
            na += Double(a[i]) * Double(a[i])
            nb += Double(b[i]) * Double(b[i])
        }
        return dot / max((na * nb).squareRoot(), 1e-30)
    }
}

/// Locations of the shared fixtures and the fetched default models, relative to the package root.
public enum FixturePaths {
    /// The package root (the directory holding Package.swift), found from this source file's path.
    public static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }()

    /// `../shared/fixtures` beside the checkout, or `$MASS_FIXTURES`.
    public static var fixtures: URL {
        if let env = ProcessInfo.processInfo.environment["MASS_FIXTURES"] { return URL(fileURLWithPath: env) }
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures")
    }

    /// `models/` in the checkout, or `$MASS_REPOSITORY`.
    public static var models: URL {
        if let env = ProcessInfo.processInfo.environment["MASS_REPOSITORY"] { return URL(fileURLWithPath: env) }
        return packageRoot.appendingPathComponent("models")
    }

    /// `models-extra/` in the checkout (the optional models, `scripts/fetch-models.sh models-extra extra`), or
    /// `$MASS_REPOSITORY_EXTRA`.
    public static var extraModels: URL {
        if let env = ProcessInfo.processInfo.environment["MASS_REPOSITORY_EXTRA"] { return URL(fileURLWithPath: env) }
        return packageRoot.appendingPathComponent("models-extra")
    }

    /// Reads a raw little-endian float32 file.
    public static func readFloats(_ url: URL) throws -> [Float] {
        let data = try Data(contentsOf: url)
        return data.withUnsafeBytes { raw in
            (0..<(data.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        }
    }
}

/// The error of type `E` that `body` throws, or nil when it throws nothing (or another type).
public func caught<E: Error>(_ type: E.Type, _ body: () throws -> Void) -> E? {
    do {
        try body()
        return nil
    } catch let error as E {
        return error
    } catch {
        return nil
    }
}

/// Writes `bytes` to a file named `name` in this process's scratch folder under the temporary directory (tests of
/// readers), and answers its path.
public func temporaryFile(_ bytes: [UInt8], named name: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mass-tests-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let path = dir.appendingPathComponent(name).path
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}
