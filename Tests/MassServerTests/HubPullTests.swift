import Foundation
import HTTPTypes
import Hummingbird
import MassTesting
import NIOCore
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `mass pull` against a local stub of a Hugging Face-style hub (these machines cannot reach a real one): a real
/// HTTP server in the test process serving a real model folder through the hub's routes (the revision listing with
/// LFS sha256s, `resolve` with ETags and Range), with a first download that drops mid-file, a corrupt file, a
/// private repository, an unknown repository and an unknown revision.
@Suite(.serialized) struct HubPullTests {
    static let commit = "0123456789abcdef0123456789abcdef01234567"

    /// What the stub saw and how it misbehaves.
    final class Hub: @unchecked Sendable {
        let lock = NSLock()
        var ranges: [String] = []
        var dropped: Set<String> = []
        func note(_ range: String) { lock.withLock { ranges.append(range) } }
        /// True the first time a file is asked for in full: that download is cut in half.
        func shouldDrop(_ path: String) -> Bool { lock.withLock { dropped.insert(path).inserted } }
    }

    static func sha256sum(_ url: URL) throws -> String { try ExternalTools.sha256sum(url) }

    /// Starts the stub on a free port; answers its base URL and a handle to stop it.
    static func startHub(_ hub: Hub) async throws -> (URL, Task<Void, any Error>) {
        let folder = TextHeadFixture.classifierDirectory
        let files = ["config.json", "model.safetensors", "tokenizer.json"]
        var listing: [[String: Any]] = []
        for file in files {
            let url = folder.appendingPathComponent(file)
            let size = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as! Int
            var sibling: [String: Any] = ["rfilename": file, "size": size]
            if file.hasSuffix(".safetensors") { sibling["lfs"] = ["sha256": try sha256sum(url), "size": size] }
            listing.append(sibling)
        }
        let body = try JSONSerialization.data(withJSONObject: ["sha": commit, "siblings": listing])
        let router = Router()
        router.get("/api/models/:owner/:name/revision/:revision") { request, context -> Response in
            let repo = "\(try context.parameters.require("owner"))/\(try context.parameters.require("name"))"
            let revision = try context.parameters.require("revision")
            if repo == "mass/private", request.headers[.authorization] != "Bearer sesame" {
                return Response(status: .unauthorized)
            }
            guard ["mass/tiny-intent", "mass/private", "mass/corrupt"].contains(repo) else {
                return Response(status: .notFound, headers: [HTTPField.Name("X-Error-Code")!: "RepoNotFound"])
            }
            guard revision == "main" || revision == commit else {
                return Response(status: .notFound, headers: [HTTPField.Name("X-Error-Code")!: "RevisionNotFound"])
            }
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        router.get("/:owner/:name/resolve/:revision/**") { request, context -> Response in
            let repo = "\(try context.parameters.require("owner"))/\(try context.parameters.require("name"))"
            let path = context.parameters.getCatchAll().joined(separator: "/")
            guard files.contains(path) else {
                return Response(status: .notFound, headers: [HTTPField.Name("X-Error-Code")!: "EntryNotFound"])
            }
            var bytes = [UInt8](try Data(contentsOf: folder.appendingPathComponent(path)))
            if repo == "mass/corrupt", path == "model.safetensors" { bytes[bytes.count / 2] ^= 0xff }
            var headers: HTTPFields = [.contentType: "application/octet-stream"]
            headers[.eTag] =
                "\"\(path.hasSuffix(".safetensors") ? try sha256sum(folder.appendingPathComponent(path)) : "abc")\""
            if let range = request.headers[.range], range.hasPrefix("bytes="),
                let start = Int(range.dropFirst(6).dropLast())
            {
                hub.note(range)
                headers[.contentRange] = "bytes \(start)-\(bytes.count - 1)/\(bytes.count)"
                return Response(
                    status: .partialContent, headers: headers,
                    body: .init(byteBuffer: ByteBuffer(bytes: bytes[start...])))
            }
            if path == "model.safetensors", repo == "mass/tiny-intent", hub.shouldDrop(repo + path) {
                // Half the file, then the connection goes away.
                let half = ByteBuffer(bytes: bytes[0..<(bytes.count / 2)])
                return Response(
                    status: .ok, headers: headers,
                    body: .init(contentLength: bytes.count) { writer in
                        try await writer.write(half)
                        throw CancellationError()
                    })
            }
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        let port = try LiveServer.freePort()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
        let task = Task { try await app.runService() }
        let base = URL(string: "http://127.0.0.1:\(port)")!
        for _ in 0..<100 {
            if (try? LiveServer.sync(URLRequest(url: base.appendingPathComponent("api/models/x/y/revision/main"))))
                != nil
            {
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return (base, task)
    }

    /// Runs `mass pull` with the hub's environment; answers status, stdout, stderr.
    static func pull(_ arguments: [String], hub: URL, token: String? = nil, home: URL) throws -> (Int32, String, String)
    {
        let process = Process()
        process.executableURL = LiveServer.binary
        process.arguments =
            ["pull"] + arguments + [
                "--repository", home.appendingPathComponent("models").path, "--cache",
                home.appendingPathComponent("cache").path,
            ]
        var env = ProcessInfo.processInfo.environment
        env["HF_ENDPOINT"] = hub.absoluteString
        env["HF_TOKEN"] = token
        if token == nil { env.removeValue(forKey: "HF_TOKEN") }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    @Test func pullsResumesVerifiesAndRegisters() async throws {
        let hub = Hub()
        let (base, server) = try await Self.startHub(hub)
        defer { server.cancel() }
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("mass-pull-\(UUID())")
        defer { try? FileManager.default.removeItem(at: home) }

        let (status, out, err) = try Self.pull(
            ["mass/tiny-intent", "--name", "intent", "--alias", "production"], hub: base, home: home)
        #expect(status == 0, "\(err)")
        let version = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], "\(out)")
        #expect(version["version"] as? Int == 1)
        #expect(version["task"] as? String == "text-classification")
        let source = version["source"] as? [String: Any]
        #expect(source?["kind"] as? String == "hub" && source?["revision"] as? String == Self.commit)
        // The dropped download was resumed from where it stopped, not started again.
        let size =
            try FileManager.default.attributesOfItem(
                atPath: TextHeadFixture.classifierDirectory.appendingPathComponent("model.safetensors").path)[.size]
            as! Int
        // (The stub writes half the file before it drops the connection; the client resumes from what reached it.)
        #expect(hub.ranges.count == 1, "\(hub.ranges)")
        let resumedAt = hub.ranges.first.flatMap { Int($0.dropFirst("bytes=".count).dropLast()) } ?? 0
        #expect(resumedAt > 0 && resumedAt <= size / 2, "\(hub.ranges)")
        let files = (version["files"] as? [[String: Any]]) ?? []
        let weights = files.first { $0["path"] as? String == "model.safetensors" }
        #expect(
            weights?["sha256"] as? String
                == (try Self.sha256sum(TextHeadFixture.classifierDirectory.appendingPathComponent("model.safetensors")))
        )

        // A second pull of the same revision is served from the cache and registers version 2.
        let again = try Self.pull(["mass/tiny-intent@\(Self.commit)", "--name", "intent"], hub: base, home: home)
        #expect(again.0 == 0, "\(again.2)")
        #expect(hub.ranges.count == 1)
    }

    @Test func refusalsAreClearAndRegisterNothing() async throws {
        let hub = Hub()
        let (base, server) = try await Self.startHub(hub)
        defer { server.cancel() }
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("mass-pull-\(UUID())")
        defer { try? FileManager.default.removeItem(at: home) }
        let cases: [([String], String?, String)] = [
            (
                ["mass/corrupt", "--name", "c"], nil,
                "'model.safetensors' of mass/corrupt is corrupt: the hub says sha256"
            ),
            (["mass/private", "--name", "p"], nil, "mass/private needs a token: set HF_TOKEN"),
            (["mass/private", "--name", "p"], "wrong", "the token in HF_TOKEN may not read mass/private"),
            (["mass/nothing"], nil, "no repository mass/nothing on \(base.absoluteString)"),
            (["mass/tiny-intent@v9"], nil, "mass/tiny-intent has no revision 'v9'"),
            (["../etc"], nil, "is not a hub repository"),
        ]
        for (arguments, token, text) in cases {
            let (status, _, err) = try Self.pull(arguments, hub: base, token: token, home: home)
            #expect(status != 0, "\(arguments)")
            #expect(err.contains(text), "\(arguments): \(err)")
        }
        // The private repository with the right token works.
        let ok = try Self.pull(["mass/private", "--name", "p"], hub: base, token: "sesame", home: home)
        #expect(ok.0 == 0, "\(ok.2)")
        // Nothing was registered for the refused pulls.
        let listed = try BinaryRunner.run([
            "models", "list", "--repository", home.appendingPathComponent("models").path,
        ])
        #expect(listed == "p\ttext-classification\tversions 1\n", "\(listed)")
    }
}
