/// The destination row for a change was written (or a newer one was already there), published by the
/// cache-invalidator to `cache-updates`.
public struct CacheUpdateMessage: Codable, Sendable, Equatable {
    /// The change that was applied.
    public var change: ChangeData
    /// False when the destination already held this or a newer version, which was kept.
    public var applied: Bool
    public var updatedAt: String

    public init(change: ChangeData, applied: Bool, updatedAt: String) {
        self.change = change
        self.applied = applied
        self.updatedAt = updatedAt
    }

    public var operationId: String { change.operationId }
}
