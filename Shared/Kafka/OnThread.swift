import Foundation

/// Runs a blocking librdkafka call (a flush, a close) on a thread of its own and waits for it, so that it
/// never holds a thread of the concurrency pool.
func onThread(_ name: String, _ body: @escaping @Sendable () -> Void) async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let thread = Thread {
            body()
            continuation.resume()
        }
        thread.name = name
        thread.start()
    }
}
