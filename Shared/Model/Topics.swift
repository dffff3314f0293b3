/// The Kafka topics the services speak through.
public enum Topics {
    /// api → writer: one message per accepted write, keyed by the record's routing key.
    public static let writeRequests = "write-requests"
    /// writer → operations and api: the provider's answer to each write.
    public static let writeResults = "write-results"
    /// writer → cache-invalidator and downstream consumers: CloudEvents for every applied change.
    public static let recordChanges = "record-changes"
    /// cache-invalidator → operations and api: the destination row was written.
    public static let cacheUpdates = "cache-updates"

    /// writer → whoever replays or inspects them: writes given up on (the provider stayed unreachable or
    /// failing through every attempt), each the request with the reason.
    public static let writeDeadLetters = "write-dead-letters"

    /// writer → operations: how far a bulk CSV write has come, and the rows the provider refused.
    public static let bulkProgress = "bulk-progress"

    /// writer and cache-invalidator → api: the result and the destination updates of synchronous writes
    /// only (the same messages as on `write-results` and `cache-updates`), so that an api instance follows
    /// what its waiting requests need and not every write's outcome. Keyed and headed by `replyToHeader`.
    public static let writeCompletions = "write-completions"

    /// The Kafka header naming the api instance a synchronous write's client waits at: on its
    /// `record-changes` events (so the cache-invalidator knows to complete it) and its completions.
    public static let replyToHeader = "writeback-reply-to"

    /// api, writer and operations → notifier: what a project's webhook destinations may be told
    /// (`NotificationEvent`), keyed by event id.
    public static let notifications = "notifications"

    public static let all = [writeRequests, writeResults, recordChanges, cacheUpdates, writeDeadLetters, bulkProgress, writeCompletions,
                             notifications]
}
