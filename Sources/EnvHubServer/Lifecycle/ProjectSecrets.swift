import Crypto
import EnvHubRuntime
import EnvHubStore
import Foundation
import NIOConcurrencyHelpers

/// Each project's `{{secret}}` (a database password, say): HMAC-SHA256 of the project's id
/// under one random key kept in the store's settings. Every replica derives the same value,
/// it stays the same across starts, and there is nothing per project to store or delete.
/// On Kubernetes this is what the project's Secret holds, which the hub never reads back.
final class ProjectSecrets: Sendable {
    static let keySetting = "project-secret-key"
    private let store: any HubStore
    private let key = NIOLockedValueBox<SymmetricKey?>(nil)

    init(store: any HubStore) { self.store = store }

    /// 64 hex digits.
    func secret(of projectID: String) async throws -> String {
        let key = try await loadedKey()
        return HMAC<SHA256>.authenticationCode(for: Data(projectID.utf8), using: key).map { String(format: "%02x", $0) }.joined()
    }

    private func loadedKey() async throws -> SymmetricKey {
        if let key = key.withLockedValue({ $0 }) { return key }
        let stored = try await store.settingInsertingIfAbsent(Self.keySetting, value: ProjectSecret.random())
        let loaded = SymmetricKey(data: Data(stored.utf8))
        key.withLockedValue { $0 = loaded }
        return loaded
    }
}
