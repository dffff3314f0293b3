import CCurl
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Fetches a client-given URL (a bulk write's `recordsURL`) safely and in constant memory: the URL and
/// every redirect are checked by a `URLGuard` and fetched from the addresses it resolved (so DNS cannot
/// answer differently between check and fetch), the body goes to `consume` chunk by chunk as it
/// arrives (a slow `consume` slows the transfer down rather than buffering it), and the transfer stops
/// at the size and time limits.
public struct GuardedDownload: Sendable {
    public var guardrail: URLGuard
    /// Most bytes read from one URL (0: no limit).
    public var maxBytes: Int64
    /// Seconds the whole transfer may take.
    public var timeout: Double
    /// Seconds the transfer may go without receiving a byte.
    public var stallSeconds: Int
    public var maxRedirects = 5

    public init(guardrail: URLGuard, maxBytes: Int64, timeout: Double, stallSeconds: Int = 60) {
        self.guardrail = guardrail
        self.maxBytes = maxBytes
        self.timeout = timeout
        self.stallSeconds = stallSeconds
    }

    /// Why a URL was not (wholly) read. `refused` is true when the URL was never fetched because it
    /// is not allowed.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let message: String
        public let refused: Bool
        public var description: String { message }
    }

    /// Reads the URL, handing the body to `consume` in chunks; `consume` answers false to stop reading.
    /// Blocks: call it from a thread of its own. Answers the bytes read.
    @discardableResult
    public func fetch(_ url: String, consume: ([UInt8]) -> Bool) throws(Failure) -> Int64 {
        var current = url
        for _ in 0...maxRedirects {
            let target: (host: String, port: Int, addresses: [String])
            do {
                target = try guardrail.check(current)
            } catch {
                throw Failure(message: current == url ? error.message : "redirect to \(current) refused: \(error.message)",
                              refused: true)
            }
            let answer = try transfer(current, pinned: target, consume: consume)
            guard let location = answer.redirect else { return answer.bytes }
            guard let next = URL(string: location, relativeTo: URL(string: current))?.absoluteString else {
                throw Failure(message: "recordsURL redirected to \(location), which is not a URL", refused: true)
            }
            current = next
        }
        throw Failure(message: "recordsURL redirected more than \(maxRedirects) times", refused: false)
    }

    /// The URL's first bytes, up to `limit` (fewer when the body is shorter), read on a thread of its own.
    public func head(_ url: String, limit: Int) async throws(Failure) -> [UInt8] {
        let download = self
        let result: Result<[UInt8], Failure> = await withCheckedContinuation { continuation in
            Thread {
                var bytes: [UInt8] = []
                do {
                    try download.fetch(url) { chunk in
                        bytes.append(contentsOf: chunk.prefix(limit - bytes.count))
                        return bytes.count < limit
                    }
                    continuation.resume(returning: .success(bytes))
                } catch let failure as Failure {
                    continuation.resume(returning: .failure(failure))
                } catch {
                    continuation.resume(returning: .failure(Failure(message: "\(error)", refused: false)))
                }
            }.start()
        }
        return try result.get()
    }

    private func transfer(
        _ url: String, pinned target: (host: String, port: Int, addresses: [String]), consume: ([UInt8]) -> Bool
    ) throws(Failure) -> (bytes: Int64, redirect: String?) {
        guard let handle = curl_easy_init() else { throw Failure(message: "could not start a transfer", refused: false) }
        defer { curl_easy_cleanup(handle) }
        return try withoutActuallyEscaping(consume) { consume throws(Failure) in
            let sink = DownloadSink(handle: handle, maxBytes: maxBytes, consume: consume)
            let owner = Unmanaged.passUnretained(sink).toOpaque()
            let addresses = target.addresses.map { $0.contains(":") ? "[\($0)]" : $0 }.joined(separator: ",")
            let resolve: UnsafeMutablePointer<curl_slist>? = curl_slist_append(nil, "\(target.host):\(target.port):\(addresses)")
            defer { curl_slist_free_all(resolve) }
            _ = wb_curl_setopt_string(handle, CURLOPT_URL, url)
            _ = wb_curl_setopt_pointer(handle, CURLOPT_RESOLVE, UnsafeMutableRawPointer(resolve))
            _ = wb_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
            _ = wb_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0)
            _ = wb_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
            _ = wb_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, Int(timeout * 1000))
            _ = wb_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, min(10_000, Int(timeout * 1000)))
            _ = wb_curl_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1)
            _ = wb_curl_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, stallSeconds)
            _ = wb_curl_setopt_string(handle, CURLOPT_ACCEPT_ENCODING, "")
            _ = wb_curl_setopt_callback(handle, CURLOPT_WRITEFUNCTION, onDownloadBody)
            _ = wb_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, owner)
            _ = wb_curl_setopt_callback(handle, CURLOPT_HEADERFUNCTION, onDownloadHeader)
            _ = wb_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, owner)
            let code = curl_easy_perform(handle)
            var status = 0
            _ = wb_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
            if let stop = sink.stop {
                switch stop {
                case .consumerDone: return (sink.bytes, nil)
                case .tooLarge: throw Failure(message: "recordsURL is larger than the limit of \(maxBytes) bytes", refused: false)
                case .status(let status):
                    throw Failure(message: "recordsURL answered HTTP \(status); it must answer 200 with the CSV", refused: false)
                }
            }
            guard code == CURLE_OK else {
                let reason = code == CURLE_OPERATION_TIMEDOUT
                    ? "the transfer took longer than \(Int(timeout)) s or stalled for \(stallSeconds) s"
                    : String(cString: curl_easy_strerror(code))
                throw Failure(message: "recordsURL could not be read: \(reason)", refused: false)
            }
            if (300..<400).contains(status) {
                guard let location = sink.location else {
                    throw Failure(message: "recordsURL answered HTTP \(status) without a Location", refused: false)
                }
                return (0, location)
            }
            guard status == 200 else {
                throw Failure(message: "recordsURL answered HTTP \(status); it must answer 200 with the CSV", refused: false)
            }
            return (sink.bytes, nil)
        }
    }
}

/// What the transfer's callbacks share; lives on `transfer`'s frame, which outlives the transfer.
private final class DownloadSink {
    enum Stop { case consumerDone, tooLarge, status(Int) }
    let handle: UnsafeMutableRawPointer
    let maxBytes: Int64
    let consume: ([UInt8]) -> Bool
    var bytes: Int64 = 0
    var location: String?
    var stop: Stop?

    init(handle: UnsafeMutableRawPointer, maxBytes: Int64, consume: @escaping ([UInt8]) -> Bool) {
        self.handle = handle
        self.maxBytes = maxBytes
        self.consume = consume
    }
}

private let onDownloadBody: wb_curl_data_callback = { data, size, count, owner in
    let length = size * count
    guard let data, let owner else { return length }
    let sink = Unmanaged<DownloadSink>.fromOpaque(owner).takeUnretainedValue()
    var status = 0
    _ = wb_curl_getinfo_long(sink.handle, CURLINFO_RESPONSE_CODE, &status)
    if (300..<400).contains(status) { return length }  // a redirect's body is not the CSV
    guard status == 200 else {
        sink.stop = .status(status)
        return 0
    }
    sink.bytes += Int64(length)
    if sink.maxBytes > 0 && sink.bytes > sink.maxBytes {
        sink.stop = .tooLarge
        return 0
    }
    let chunk = data.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
    guard sink.consume(chunk) else {
        sink.stop = .consumerDone
        return 0
    }
    return length
}

private let onDownloadHeader: wb_curl_data_callback = { data, size, count, owner in
    let length = size * count
    guard let data, let owner else { return length }
    let sink = Unmanaged<DownloadSink>.fromOpaque(owner).takeUnretainedValue()
    let line = data.withMemoryRebound(to: UInt8.self, capacity: length) {
        String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
    }
    if line.hasPrefix("HTTP/") {
        sink.location = nil
    } else if line.lowercased().hasPrefix("location:") {
        sink.location = line.dropFirst("location:".count).trimmingCharacters(in: .whitespacesAndNewlines)
    } else if line.lowercased().hasPrefix("content-length:"), sink.maxBytes > 0,
        let declared = Int64(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespacesAndNewlines)),
        declared > sink.maxBytes
    {
        var status = 0
        _ = wb_curl_getinfo_long(sink.handle, CURLINFO_RESPONSE_CODE, &status)
        if status == 200 {
            // Said at once: the body would pass the limit.
            sink.stop = .tooLarge
            return 0
        }
    }
    return length
}
