import Connectors
import Shared

/// Renews expired access tokens, one refresh per connection at a time: calls whose token is refused
/// while a renewal runs wait for that renewal (an actor alone would let them in at its await and refresh
/// again), and a call that comes later first reads the installation again and uses the token another
/// call (or process) already renewed.
public actor TokenRefresher {
    let installations: InstallationStore
    /// Told of each renewal and of each connection found refused (once, until it is renewed), apart: the
    /// calls waiting for the renewal do not wait for the telling.
    let changes: @Sendable (ConnectionChange) async -> Void
    private var running: [String: Task<TokenRefresh, any Error>] = [:]

    public init(installations: InstallationStore, changes: @escaping @Sendable (ConnectionChange) async -> Void = { _ in }) {
        self.installations = installations
        self.changes = changes
    }

    /// Renews the token `refused` carried; answers with the outcome, the renewed connection being in the
    /// store (and its cache) when it is `.refreshed`.
    public func renew(_ context: InstallationContext, refused: Connection, with connector: any Connector) async throws
        -> TokenRefresh
    {
        if let renewal = running[context.connectionId] { return try await renewal.value }
        let renewal = Task { try await self.renewOnce(context, refused: refused, with: connector) }
        running[context.connectionId] = renewal
        defer { running[context.connectionId] = nil }
        return try await renewal.value
    }

    private func renewOnce(_ context: InstallationContext, refused: Connection, with connector: any Connector) async throws
        -> TokenRefresh
    {
        guard let current = try await installations.load(context.installationId) else {
            return .refused(WriteError(message: "installation \(context.installationId) no longer exists", code: "RECONNECT_REQUIRED"))
        }
        if current.connection.accessToken != refused.accessToken {
            installations.cache.set(current, for: context.installationId)
            return .refreshed(accessToken: current.connection.accessToken, refreshToken: nil, instanceURL: nil)
        }
        let outcome = await connector.refresh(current.connection)
        switch outcome {
        case .refreshed(let token, let refreshToken, let instanceURL):
            var renewed = current.connection
            renewed.accessToken = token
            if let refreshToken { renewed.refreshToken = refreshToken }
            if let instanceURL { renewed.baseURL = instanceURL }
            if let change = try await installations.store(renewed, for: current) { tell(change) }
        case .refused(let error):
            if let change = await installations.markBadCredentials(current, error: error) { tell(change) }
        case .unavailable:
            break
        }
        return outcome
    }

    private nonisolated func tell(_ change: ConnectionChange) {
        let changes = changes
        Task { await changes(change) }
    }
}
