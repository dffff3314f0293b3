/// The destination rows of one operation's changes were written (or newer ones were already there),
/// published by the cache-invalidator to `cache-updates`: one message per operation for the changes of
/// a batch it applied, not one per record.
public struct CacheUpdateMessage: OperationMessage, Sendable, Equatable {
    public var identity: OperationIdentity
    public var content: Held

    /// What the destination holds now of the operation's records.
    public struct Held: Codable, Sendable, Equatable {
        public var provider: Provider
        /// In the order the changes were applied.
        public var records: [Record]
        public var updatedAt: String
    }

    /// One record of the operation the destination holds now.
    public struct Record: Codable, Sendable, Equatable {
        public var recordId: String
        /// The change's version (microseconds since the epoch when the provider applied it).
        public var version: Int64
        /// False when the destination already held this or a newer version, which was kept.
        public var applied: Bool

        public init(recordId: String, version: Int64, applied: Bool) {
            self.recordId = recordId
            self.version = version
            self.applied = applied
        }
    }

    public init(identity: OperationIdentity, content: Held) {
        self.identity = identity
        self.content = content
    }

    /// The update of `changes`, all of one operation, each with whether it was applied.
    public init(changes: [(change: ChangeData, applied: Bool)], updatedAt: String) {
        let first = changes[0].change
        self.init(
            identity: OperationIdentity(
                operationId: first.operationId, projectId: first.projectId, integrationId: first.integrationId,
                installationId: first.installationId, groupRef: first.groupRef, objectName: first.objectName, type: first.operation),
            content: Held(
                provider: first.provider,
                records: changes.map { Record(recordId: $0.change.recordId, version: $0.change.version, applied: $0.applied) },
                updatedAt: updatedAt))
    }

    public init(change: ChangeData, applied: Bool, updatedAt: String) {
        self.init(changes: [(change, applied)], updatedAt: updatedAt)
    }
}
