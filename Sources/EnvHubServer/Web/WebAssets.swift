import EnvHubCore
import Foundation
import NIOCore

/// The web UI's files (`Resources/web`), read into memory once at start-up. A request can
/// only name a file that is in this table, so no path a client sends ever reaches the file
/// system: `..`, encoded slashes and absolute paths simply find nothing.
struct WebAssets: Sendable {
    struct Asset: Sendable {
        let body: ByteBuffer
        let contentType: String
        /// A strong validator: the same bytes always give the same tag, on every replica.
        let etag: String
    }

    /// Keyed by the path under `web/`, such as `app.js` or `pages/chat.js`.
    let files: [String: Asset]

    subscript(path: String) -> Asset? { files[path] }

    static func load() throws -> WebAssets {
        guard let root = Bundle.module.url(forResource: "web", withExtension: nil) else {
            throw EnvHubError.unavailable("the web UI's files are missing from this build")
        }
        return try load(from: root)
    }

    static func load(from root: URL) throws -> WebAssets {
        var files: [String: Asset] = [:]
        let rootPath = root.standardizedFileURL.path
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey]) else {
            return WebAssets(files: [:])
        }
        for case let url as URL in walker {
            guard try url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile == true,
                  let contentType = contentType(ofExtension: url.pathExtension) else { continue }
            let path = String(url.standardizedFileURL.path.dropFirst(rootPath.count + 1))
            let data = try Data(contentsOf: url)
            files[path] = Asset(body: ByteBuffer(bytes: data), contentType: contentType, etag: etag(of: data))
        }
        return WebAssets(files: files)
    }

    /// Only these kinds are served; anything else in the folder (notes, editor files) is not.
    static func contentType(ofExtension pathExtension: String) -> String? {
        switch pathExtension {
        case "html": "text/html; charset=utf-8"
        case "js": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        default: nil
        }
    }

    /// FNV-1a over the bytes, with the length: enough to tell builds apart, cheap to compute.
    static func etag(of data: Data) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in data {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return "\"\(String(data.count, radix: 16))-\(String(hash, radix: 16))\""
    }
}
