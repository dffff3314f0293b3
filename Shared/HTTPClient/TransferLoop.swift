import CCurl
import Foundation
import ThreadPool

/// Runs the requests of an `HTTPClient` on one thread, with libcurl's multi interface: every transfer in
/// flight shares that thread and the multi handle's cache of kept-alive connections. A request is queued
/// under a lock and the thread woken only when it may be waiting in `curl_multi_poll`, so a busy loop
/// takes many requests per turn and no request costs a thread switch of its own.
///
/// At most `concurrency` transfers run at once, shared between shares as `ShareQueues` says.
///
/// `@unchecked Sendable`: `queues`, `stopping` and `polling` are only touched under `lock`; the multi
/// handle, the easy handles and `active` only by the loop's thread (`curl_multi_wakeup` may be called
/// from any thread, and is called under `lock` so that the loop cannot have released the handle).
final class TransferLoop: @unchecked Sendable {
    private struct Pending {
        let request: HTTPRequest
        let continuation: CheckedContinuation<HTTPResponse, any Error>
    }

    private let lock = NSLock()
    private var queues: ShareQueues<Pending>
    private var stopping = false
    /// The loop may be in `curl_multi_poll` or about to enter it without looking at the queues again.
    private var polling = false

    private let multi: UnsafeMutableRawPointer
    private let connectTimeout: Double
    private var active: [UnsafeMutableRawPointer: Transfer] = [:]
    /// Easy handles of ended transfers, kept for the next ones.
    private var idle: [UnsafeMutableRawPointer] = []

    init(name: String, concurrency: Int, connectTimeout: Double) {
        guard let multi = curl_multi_init() else { fatalError("curl_multi_init failed") }
        self.multi = multi
        self.connectTimeout = connectTimeout
        // libcurl keeps at most 4 idle connections per transfer added at the time: with transfers removed
        // as they end, a quiet client would close the connections a busy one opened. Keep as many as
        // `concurrency` transfers may use.
        _ = wb_curl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, max(16, concurrency * 4))
        queues = ShareQueues(size: concurrency)
        let thread = Thread { [self] in self.run() }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    func execute(_ request: HTTPRequest, share: String?) async throws -> HTTPResponse {
        try await withCheckedThrowingContinuation { continuation in
            lock.lock()
            defer { lock.unlock() }
            guard !stopping else {
                continuation.resume(throwing: HTTPClientError(
                    code: -1, message: "the HTTP client is shut down", notSent: true, isTimeout: false))
                return
            }
            queues.append(Pending(request: request, continuation: continuation), share: share)
            if polling {
                polling = false
                curl_multi_wakeup(multi)
            }
        }
    }

    /// Lets the queued and running transfers end, then stops the thread.
    func shutdown() {
        lock.lock()
        defer { lock.unlock() }
        guard !stopping else { return }
        stopping = true
        curl_multi_wakeup(multi)
    }

    private func run() {
        while true {
            lock.lock()
            var starting: [(share: String?, job: Pending)] = []
            while let next = queues.next(draining: stopping) { starting.append(next) }
            if stopping && queues.waiting == 0 && queues.running == 0 {
                lock.unlock()
                break
            }
            polling = true
            lock.unlock()

            // A request that could not start freed its slot: look at the queue again before sleeping.
            var refused = false
            for (share, pending) in starting where !start(pending, share: share) { refused = true }
            var running: Int32 = 0
            _ = curl_multi_perform(multi, &running)
            var ended: [(Transfer, Result<HTTPResponse, any Error>)] = []
            var left: Int32 = 0
            while let message = curl_multi_info_read(multi, &left) {
                guard message.pointee.msg == CURLMSG_DONE, let handle = message.pointee.easy_handle,
                      let transfer = active.removeValue(forKey: handle) else { continue }
                ended.append((transfer, transfer.result(message.pointee.data.result)))
                _ = curl_multi_remove_handle(multi, handle)
                idle.append(handle)
            }
            if ended.isEmpty {
                if !refused { _ = curl_multi_poll(multi, nil, 0, 1000, nil) }
                continue
            }
            lock.lock()
            for (transfer, _) in ended { queues.ended(share: transfer.share) }
            lock.unlock()
            for (transfer, result) in ended { transfer.continuation.resume(with: result) }
        }
        for handle in idle { curl_easy_cleanup(handle) }
        curl_multi_cleanup(multi)
    }

    /// Starts a request's transfer; false when it could not start (it failed as not sent, its slot is free).
    private func start(_ pending: Pending, share: String?) -> Bool {
        func refuse(_ message: String) -> Bool {
            lock.lock()
            queues.ended(share: share)
            lock.unlock()
            pending.continuation.resume(throwing: HTTPClientError(code: -1, message: message, notSent: true, isTimeout: false))
            return false
        }
        let handle: UnsafeMutableRawPointer
        if let reused = idle.popLast() {
            curl_easy_reset(reused)
            handle = reused
        } else if let fresh = curl_easy_init() {
            handle = fresh
        } else {
            return refuse("curl_easy_init failed")
        }
        let transfer = Transfer(
            pending.request, handle: handle, connectTimeout: connectTimeout, share: share, continuation: pending.continuation)
        let added = curl_multi_add_handle(multi, handle)
        guard added == CURLM_OK else {
            idle.append(handle)
            return refuse("curl_multi_add_handle failed: \(String(cString: curl_multi_strerror(added)))")
        }
        active[handle] = transfer
        return true
    }
}
