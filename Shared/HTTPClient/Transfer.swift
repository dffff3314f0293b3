import CCurl

#if canImport(Glibc)
import Glibc
#endif

/// One request on a libcurl easy handle that `TransferLoop` drives: the handle's options, what the
/// callbacks collect, and the response or error it came to. The handle and the transfer belong to the
/// loop's thread while it runs.
final class Transfer {
    let handle: UnsafeMutableRawPointer
    let share: String?
    let continuation: CheckedContinuation<HTTPResponse, any Error>
    private let sink = ResponseSink()
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private var resolveList: UnsafeMutablePointer<curl_slist>?

    /// Sets `handle` (fresh or reset) up for `request`.
    init(
        _ request: HTTPRequest, handle: UnsafeMutableRawPointer, connectTimeout: Double, share: String?,
        continuation: CheckedContinuation<HTTPResponse, any Error>
    ) {
        self.handle = handle
        self.share = share
        self.continuation = continuation
        let owner = Unmanaged.passUnretained(sink).toOpaque()
        _ = wb_curl_setopt_string(handle, CURLOPT_URL, request.url)
        _ = wb_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        _ = wb_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, Int(request.timeout * 1000))
        _ = wb_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Int(connectTimeout * 1000))
        _ = wb_curl_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1)
        _ = wb_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method)
        if request.method == "HEAD" { _ = wb_curl_setopt_long(handle, CURLOPT_NOBODY, 1) }
        if let pinned = request.pinned {
            resolveList = curl_slist_append(nil, pinned)
            _ = wb_curl_setopt_pointer(handle, CURLOPT_RESOLVE, UnsafeMutableRawPointer(resolveList))
        }
        if request.pinned != nil || request.direct {
            _ = wb_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
            _ = wb_curl_setopt_string(handle, CURLOPT_NOPROXY, "*")
        }
        sink.limit = request.maxResponseBytes
        _ = wb_curl_setopt_callback(handle, CURLOPT_WRITEFUNCTION, onBody)
        _ = wb_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, owner)
        _ = wb_curl_setopt_callback(handle, CURLOPT_HEADERFUNCTION, onHeader)
        _ = wb_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, owner)
        for (name, value) in request.headers {
            headerList = curl_slist_append(headerList, "\(name): \(value)")
        }
        // libcurl adds "Expect: 100-continue" for larger bodies, which costs a round trip.
        headerList = curl_slist_append(headerList, "Expect:")
        _ = wb_curl_setopt_pointer(handle, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headerList))
        if let body = request.body {
            _ = wb_curl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, body.count)
            if body.isEmpty {
                _ = wb_curl_setopt_string(handle, CURLOPT_COPYPOSTFIELDS, "")
            } else {
                // COPYPOSTFIELDS copies the bytes, so the buffer need not outlive this call.
                body.withUnsafeBytes { bytes in
                    _ = wb_curl_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress))
                }
            }
        }
    }

    deinit {
        curl_slist_free_all(headerList)
        curl_slist_free_all(resolveList)
    }

    /// What the finished transfer came to, given libcurl's code for it.
    func result(_ code: CURLcode) -> Result<HTTPResponse, any Error> {
        guard code == CURLE_OK || (code == CURLE_WRITE_ERROR && sink.truncated) else {
            let notSent = code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST
                || code == CURLE_COULDNT_RESOLVE_PROXY
            return .failure(HTTPClientError(
                code: Int(code.rawValue), message: String(cString: curl_easy_strerror(code)), notSent: notSent,
                isTimeout: code == CURLE_OPERATION_TIMEDOUT))
        }
        var status = 0
        _ = wb_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return .success(HTTPResponse(status: status, headers: sink.headers, body: sink.body))
    }
}

/// Collects what libcurl hands the callbacks. Its transfer holds it until the transfer is over, so the
/// callbacks may use it unretained.
private final class ResponseSink {
    var body: [UInt8] = []
    var headers: [String: String] = [:]
    /// The most body bytes kept (0: all).
    var limit = 0
    var truncated = false
}

private let onBody: wb_curl_data_callback = { data, size, count, owner in
    let length = size * count
    guard let data, let owner else { return length }
    let sink = Unmanaged<ResponseSink>.fromOpaque(owner).takeUnretainedValue()
    let kept = sink.limit > 0 ? min(length, sink.limit - sink.body.count) : length
    data.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
        sink.body.append(contentsOf: UnsafeBufferPointer(start: bytes, count: kept))
    }
    guard kept == length else {
        sink.truncated = true
        return 0  // ends the transfer: the rest is not read
    }
    return length
}

private let onHeader: wb_curl_data_callback = { data, size, count, owner in
    let length = size * count
    guard let data, let owner else { return length }
    let sink = Unmanaged<ResponseSink>.fromOpaque(owner).takeUnretainedValue()
    data.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
        sink.header(line: UnsafeBufferPointer(start: bytes, count: length))
    }
    return length
}

extension ResponseSink {
    /// One header line as libcurl hands it (with its line end): a status line starts the headers afresh
    /// (a new response, after a redirect or 100 Continue); `Name: value` is kept under the lower-cased
    /// name, the value trimmed. Read as bytes: this runs for every header of every provider answer.
    fileprivate func header(line: UnsafeBufferPointer<UInt8>) {
        if line.starts(with: "HTTP/".utf8) {
            headers = [:]
            return
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return }
        let name = String(unsafeUninitializedCapacity: colon) { buffer in
            for index in 0..<colon {
                let byte = line[index]
                buffer[index] = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
            }
            return colon
        }
        func isSpace(_ byte: UInt8) -> Bool {
            byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n")
        }
        var start = colon + 1
        var end = line.count
        while start < end && isSpace(line[start]) { start += 1 }
        while end > start && isSpace(line[end - 1]) { end -= 1 }
        headers[name] = String(decoding: UnsafeBufferPointer(rebasing: line[start..<end]), as: UTF8.self)
    }
}
