import CRdKafka

/// A consumer's read-ahead: librdkafka fetches ahead of what the application has taken, up to
/// `queued.max.messages.kbytes` (a consumer's default here is `readAheadKilobytes`). That bound is
/// what keeps a consumer's memory flat while it is behind. librdkafka 2.0.2 stops fetching when the
/// bound is reached but does not start again when the application has taken the messages: its fetcher
/// looks again only when something else wakes it, at the latest after a second, so a consumer that is
/// behind would read at most one bound per second. `ReadAheadWatch` tells the poll thread when the
/// queue it reads from has been long and has mostly been taken, and `nudgeFetchers` then sends each
/// partition leader a request (the latest offsets of the assigned partitions), which wakes its fetcher.
struct ReadAheadWatch {
    /// The default bound of a consumer's read-ahead, in KiB.
    static let readAheadKilobytes = 16 * 1024
    /// A queue this long may have reached the bound (change events are about 1 KiB each in the queue).
    var backlog = 1024
    /// The longest the queue was since the last nudge.
    private(set) var peak = 0

    init(backlog: Int = 1024) { self.backlog = backlog }

    /// Told the queue's length after each poll; true when fetching may have stopped at the bound and
    /// what it had fetched is three quarters taken: time to wake the fetchers.
    mutating func observe(queued: Int) -> Bool {
        if queued > peak {
            peak = queued
            return false
        }
        guard peak >= backlog, queued <= peak / 4 else { return false }
        // The next nudge waits for the queue to be long again.
        peak = 0
        return true
    }
}

/// Wakes the fetchers of the assigned partitions' leaders: asks each leader for the latest offsets of
/// its partitions (the answer is not needed; the request makes the leader's broker thread look at its
/// partitions again). Waits for the answers at most `timeoutMilliseconds`.
func nudgeFetchers(_ handle: OpaquePointer, timeoutMilliseconds: Int32 = 500) {
    var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
    guard rd_kafka_assignment(handle, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return }
    defer { rd_kafka_topic_partition_list_destroy(list) }
    guard list.pointee.cnt > 0 else { return }
    for index in 0..<Int(list.pointee.cnt) { list.pointee.elems[index].offset = Int64(RD_KAFKA_OFFSET_END) }
    _ = rd_kafka_offsets_for_times(handle, list, timeoutMilliseconds)
}
