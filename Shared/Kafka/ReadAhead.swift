import CRdKafka

/// A consumer's read-ahead: librdkafka fetches ahead of what the application has taken, up to
/// `queued.max.messages.kbytes` of message values (a consumer's default here is `defaultKilobytes`).
/// That bound is what keeps a consumer's memory flat while it is behind. librdkafka 2.0.2 stops
/// fetching when the bound is reached and does not start again when the application has taken the
/// messages, nor when paused partitions are resumed: its fetcher looks again only when something else
/// wakes it, at the latest after a second. A consumer that is behind would read at most one bound per
/// second, and lose a second at each pause. `ReadAheadWatch` tells the poll thread when the queue it
/// reads from may have reached the bound (its length times the average value size seen passed half of
/// it) and has since been three quarters taken; `nudgeFetchers` then wakes the fetchers.
struct ReadAheadWatch {
    /// The default bound of a consumer's read-ahead, in librdkafka's kilobytes (1,000 bytes).
    static let defaultKilobytes = 16 * 1024
    /// The bound, in bytes of message values.
    let boundBytes: Double
    /// The average size of the message values delivered (a moving average), in bytes.
    private(set) var averageBytes: Double = 1024
    /// The longest the queue was since the last nudge (or pause).
    private(set) var peak = 0

    init(boundBytes: Double) { self.boundBytes = boundBytes }

    /// A queue this long may have reached the bound: half of it, at the average size.
    var backlog: Int { max(8, Int(boundBytes / 2 / max(averageBytes, 1))) }

    /// Told the size of each message value handed out.
    mutating func delivered(bytes: Int) {
        averageBytes += (Double(bytes) - averageBytes) / 64
    }

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

    /// The queue was emptied (pausing drops what was read ahead): its length so far tells nothing.
    mutating func reset() { peak = 0 }
}

/// Wakes the fetchers of the assigned partitions' leaders: asks each leader for the latest offsets of
/// its partitions. The answer is not needed (nor waited for: the requests are sent and the call
/// returns); sending a request makes the leader's broker thread look at its partitions again.
func nudgeFetchers(_ handle: OpaquePointer) {
    var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
    guard rd_kafka_assignment(handle, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return }
    defer { rd_kafka_topic_partition_list_destroy(list) }
    nudgeFetchers(handle, of: list)
}

/// Wakes the fetchers of these partitions' leaders (their offsets in `list` are overwritten).
func nudgeFetchers(_ handle: OpaquePointer, of list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
    guard list.pointee.cnt > 0 else { return }
    for index in 0..<Int(list.pointee.cnt) { list.pointee.elems[index].offset = Int64(RD_KAFKA_OFFSET_END) }
    _ = rd_kafka_offsets_for_times(handle, list, 0)
}

/// The read-ahead bound a client was created with (`queued.max.messages.kbytes`), in bytes.
func readAheadBoundBytes(_ handle: OpaquePointer) -> Double {
    var buffer = [CChar](repeating: 0, count: 32)
    var size = buffer.count
    guard let conf = rd_kafka_conf(handle), rd_kafka_conf_get(conf, "queued.max.messages.kbytes", &buffer, &size) == RD_KAFKA_CONF_OK,
          let kilobytes = Double(cText(buffer))
    else { return Double(ReadAheadWatch.defaultKilobytes) * 1000 }
    return kilobytes * 1000
}
