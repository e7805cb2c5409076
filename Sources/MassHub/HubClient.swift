import AsyncHTTPClient
public import Foundation
import MassRegistry
import NIOCore
import NIOHTTP1

/// A model repository on a Hugging Face-style hub, fetched as the hub's own tools fetch it: the revision's file
/// listing from `GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true`, each file from
/// `GET {endpoint}/{repo}/resolve/{commit}/{path}` into a cache (`{cache}/{repo}/{commit}/`), resumed with a
/// `Range` request after a dropped connection, and checked: an LFS file's sha256 (from the listing or its ETag)
/// and every file's size must match, or the file is refused and nothing is registered. The endpoint and token
/// are given by the caller (the CLI reads `HF_ENDPOINT` and `HF_TOKEN`, as Hugging Face's tools do).
public struct HubClient: Sendable {
    public struct Snapshot: Sendable {
        public let repository: String
        /// The commit the revision resolved to.
        public let commit: String
        public let folder: URL
        public let files: [String]
    }

    /// Progress of one file: (path, bytes so far, bytes in all).
    public typealias Progress = @Sendable (String, Int, Int) -> Void

    public let endpoint: URL
    public let token: String?
    public let cache: URL
    /// Attempts per file (a dropped connection resumes where it stopped).
    public var attempts = 5

    public init(endpoint: URL, token: String?, cache: URL) {
        self.endpoint = endpoint
        self.token = token
        self.cache = cache
    }

    /// Fetches every file of `repository` at `revision` (a branch, tag or commit; default "main").
    public func snapshot(_ repository: String, revision: String = "main", progress: Progress? = nil) async throws
        -> Snapshot
    {
        try Self.check(repository: repository)
        let client = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: .init(
                redirectConfiguration: .follow(max: 10, allowCycles: false),
                timeout: .init(connect: .seconds(10), read: .seconds(60))))
        do {
            let listing = try await self.listing(repository, revision: revision, client: client)
            let folder = cache.appendingPathComponent(repository).appendingPathComponent(listing.sha)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for sibling in listing.siblings {
                try await download(
                    sibling, repository: repository, commit: listing.sha, into: folder, client: client,
                    progress: progress)
            }
            try await client.shutdown()
            return Snapshot(
                repository: repository, commit: listing.sha, folder: folder, files: listing.siblings.map(\.rfilename))
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    struct Listing: Decodable {
        struct Sibling: Decodable {
            struct LFS: Decodable {
                let sha256: String
                let size: Int
            }
            let rfilename: String
            let size: Int?
            let lfs: LFS?
        }
        let sha: String
        let siblings: [Sibling]
    }

    func listing(_ repository: String, revision: String, client: HTTPClient) async throws -> Listing {
        let escaped = revision.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(["-", "_", "."]))!
        let url =
            endpoint.appendingPathComponent("api/models/\(repository)/revision/\(escaped)").absoluteString
            + "?blobs=true"
        let response = try await client.execute(request(url), timeout: .seconds(60))
        try check(response, repository: repository, revision: revision, what: "the file listing")
        let body = try await response.body.collect(upTo: 64 << 20)
        do {
            let listing = try JSONDecoder().decode(Listing.self, from: Data(body.readableBytesView))
            for sibling in listing.siblings { try Self.check(path: sibling.rfilename) }
            guard !listing.siblings.isEmpty else {
                throw HubError("\(repository)@\(revision) lists no files")
            }
            return listing
        } catch let error as HubError {
            throw error
        } catch {
            throw HubError(
                "\(endpoint.host ?? "the hub")'s file listing of \(repository) is not what a hub answers: \(error)")
        }
    }

    /// Downloads one file into the cache unless it is there whole; resumes a partial download with `Range`.
    func download(
        _ sibling: Listing.Sibling, repository: String, commit: String, into folder: URL, client: HTTPClient,
        progress: Progress?
    ) async throws {
        let path = sibling.rfilename
        let target = folder.appendingPathComponent(path)
        let partial = target.appendingPathExtension("incomplete")
        let expectedSize = sibling.lfs?.size ?? sibling.size
        let fm = FileManager.default
        try fm.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        if fm.fileExists(atPath: target.path) {
            if let expectedSize, Self.size(target) != expectedSize {
                try fm.removeItem(at: target)  // a damaged cache entry: fetched again
            } else {
                return
            }
        }
        let url = endpoint.appendingPathComponent("\(repository)/resolve/\(commit)/\(path)").absoluteString
        var lastError: (any Error)?
        var etag: String?
        for attempt in 1...attempts {
            let have = fm.fileExists(atPath: partial.path) ? Self.size(partial) : 0
            var req = request(url)
            if have > 0 { req.headers.add(name: "Range", value: "bytes=\(have)-") }
            do {
                let response = try await client.execute(req, timeout: .seconds(3600))
                try check(response, repository: repository, revision: commit, what: "'\(path)'")
                etag = etag ?? Self.etag(response.headers)
                let resumed = response.status == .partialContent
                if !resumed, fm.fileExists(atPath: partial.path) { try fm.removeItem(at: partial) }
                if !fm.fileExists(atPath: partial.path) { fm.createFile(atPath: partial.path, contents: nil) }
                let handle = try FileHandle(forWritingTo: partial)
                defer { try? handle.close() }
                try handle.seekToEnd()
                var written = resumed ? have : 0
                let total = expectedSize ?? (Int(response.headers.first(name: "Content-Length") ?? "") ?? 0) + written
                for try await chunk in response.body {
                    try handle.write(contentsOf: Data(chunk.readableBytesView))
                    written += chunk.readableBytes
                    progress?(path, written, total)
                }
                try handle.close()
                if let expectedSize, written < expectedSize {
                    throw HubError("'\(path)': the connection closed after \(written) of \(expectedSize) bytes")
                }
                try verify(partial, sibling: sibling, etag: etag, repository: repository)
                try fm.moveItem(at: partial, to: target)
                return
            } catch let error as HubError where error.final {
                throw error
            } catch {
                lastError = error
                if attempt < attempts { try await Task.sleep(for: .milliseconds(200 * attempt)) }
            }
        }
        throw HubError(
            "'\(path)' of \(repository): gave up after \(attempts) attempts: \(lastError.map { "\($0)" } ?? "")")
    }

    /// An LFS file must hash to its sha256 (the listing's, else a 64-hex ETag); every file must have its size.
    func verify(_ file: URL, sibling: Listing.Sibling, etag: String?, repository: String) throws {
        let path = sibling.rfilename
        let size = Self.size(file)
        if let expected = sibling.lfs?.size ?? sibling.size, size != expected {
            try? FileManager.default.removeItem(at: file)
            throw HubError("'\(path)' of \(repository) has \(size) bytes; the hub lists \(expected)", final: true)
        }
        let expected = sibling.lfs?.sha256 ?? etag.flatMap { $0.count == 64 && $0.allSatisfy(\.isHexDigit) ? $0 : nil }
        guard let expected else { return }
        let actual = try ArtifactStore.sha256(of: file).sha256
        guard actual == expected.lowercased() else {
            try? FileManager.default.removeItem(at: file)
            throw HubError(
                "'\(path)' of \(repository) is corrupt: the hub says sha256 \(expected), the download hashes to \(actual)",
                final: true)
        }
    }

    func request(_ url: String) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "User-Agent", value: "mass")
        if let token, !token.isEmpty { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        return request
    }

    /// Turns the hub's refusals into errors that say what to do.
    func check(_ response: HTTPClientResponse, repository: String, revision: String, what: String) throws {
        let code = response.headers.first(name: "X-Error-Code")
        switch response.status.code {
        case 200, 206: return
        case 401, 403:
            throw HubError(
                token == nil
                    ? "\(repository) needs a token: set HF_TOKEN (\(endpoint.host ?? "the hub") answered \(response.status.code))"
                    : "the token in HF_TOKEN may not read \(repository) (\(response.status.code))",
                final: true)
        case 404 where code == "RevisionNotFound":
            throw HubError("\(repository) has no revision '\(revision)'", final: true)
        case 404 where code == "EntryNotFound":
            throw HubError("\(repository)@\(revision) has no file \(what)", final: true)
        case 404:
            throw HubError("no repository \(repository) on \(endpoint.absoluteString)", final: true)
        case 416:
            throw HubError("\(what): the hub refused to resume the download (416)")
        default:
            throw HubError("\(what): \(endpoint.host ?? "the hub") answered \(response.status.code)")
        }
    }

    static func etag(_ headers: HTTPHeaders) -> String? {
        (headers.first(name: "X-Linked-Etag") ?? headers.first(name: "ETag")).map {
            $0.replacingOccurrences(of: "W/", with: "").trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
    }

    static func size(_ url: URL) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: url.path)[.size]) as? Int) ?? 0
    }

    /// `owner/name`: letters, digits, '-', '_', '.'.
    static func check(repository: String) throws {
        let parts = repository.split(separator: "/", omittingEmptySubsequences: false)
        let ok =
            parts.count == 2
            && parts.allSatisfy { part in
                !part.isEmpty && part != "." && part != ".."
                    && part.unicodeScalars.allSatisfy {
                        $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0))
                    }
            }
        guard ok else { throw HubError("'\(repository)' is not a hub repository (owner/name)", final: true) }
    }

    /// A listed path must stay inside the snapshot folder.
    static func check(path: String) throws {
        let parts = path.split(separator: "/")
        guard !path.hasPrefix("/"), !parts.isEmpty, !parts.contains(".."), !parts.contains(".") else {
            throw HubError("the hub lists a file outside the repository: '\(path)'", final: true)
        }
    }
}

/// What the hub client throws; `final` errors are not retried.
public struct HubError: Error, CustomStringConvertible, Sendable {
    public let message: String
    let final: Bool
    init(_ message: String, final: Bool = false) {
        self.message = message
        self.final = final
    }
    public var description: String { message }
}
