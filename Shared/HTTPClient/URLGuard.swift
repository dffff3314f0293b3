import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Decides whether a URL given by a client (a bulk write's `recordsURL`) may be fetched: http or https
/// only, and a host whose every address is public — not loopback, private, link-local (which holds the
/// clouds' metadata addresses), carrier-grade NAT, multicast, reserved or unspecified — unless the
/// operator's allow-list names the host or one of its networks. The addresses it answers are the ones
/// to connect to (pin them, so that DNS cannot change its answer between check and fetch), and a
/// redirect must be checked again.
public struct URLGuard: Sendable {
    /// Host names (exact, case-insensitive) and networks (`10.1.0.0/16`, `fd00::/8`) allowed anyway.
    public let allowedHosts: Set<String>
    public let allowedNetworks: [Network]

    public init(allow entries: [String] = []) {
        var hosts: Set<String> = []
        var networks: [Network] = []
        for entry in entries.map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
            if let network = Network(entry) { networks.append(network) } else { hosts.insert(entry.lowercased()) }
        }
        allowedHosts = hosts
        allowedNetworks = networks
    }

    public struct Refusal: Error, Equatable, CustomStringConvertible, Sendable {
        public let message: String
        /// The host's name could not be resolved now (a DNS failure that may pass), rather than refused.
        public var unresolved = false
        public var description: String { message }

        public init(message: String, unresolved: Bool = false) {
            self.message = message
            self.unresolved = unresolved
        }
    }

    /// The URL's host, port and the addresses to connect to; a refusal says why not, naming the URL as
    /// `subject` (what the client called it).
    public func check(_ text: String, subject: String = "recordsURL") throws(Refusal) -> (host: String, port: Int, addresses: [String]) {
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased() else {
            throw Refusal(message: "\(subject) is not a URL")
        }
        guard scheme == "http" || scheme == "https" else {
            throw Refusal(message: "\(subject) must be http or https, not \(scheme)")
        }
        guard url.user == nil && url.password == nil else { throw Refusal(message: "\(subject) must not carry a user or password") }
        guard let rawHost = url.host, !rawHost.isEmpty else { throw Refusal(message: "\(subject) has no host") }
        let host = rawHost.hasPrefix("[") ? String(rawHost.dropFirst().dropLast()) : rawHost
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        let addresses = try resolve(host, subject: subject)
        if allowedHosts.contains(host.lowercased()) { return (host, port, addresses.map(\.text)) }
        for address in addresses where !allowedNetworks.contains(where: { $0.contains(address) }) {
            if let kind = address.blockedKind {
                throw Refusal(message: "\(subject) host \(host) resolves to \(address.text), a \(kind) address; "
                    + "the operator may allow it by name or network")
            }
        }
        return (host, port, addresses.map(\.text))
    }

    private func resolve(_ host: String, subject: String) throws(Refusal) -> [Address] {
        if let literal = Address(host) { return [literal] }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else {
            throw Refusal(message: "\(subject) host \(host) does not resolve", unresolved: true)
        }
        defer { freeaddrinfo(list) }
        var found: [Address] = []
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let entry = next {
            if let address = Address(entry.pointee.ai_addr), !found.contains(address) { found.append(address) }
            next = entry.pointee.ai_next
        }
        guard !found.isEmpty else { throw Refusal(message: "\(subject) host \(host) has no address", unresolved: true) }
        return found
    }

    /// An IPv4 or IPv6 address as its 4 or 16 bytes.
    public struct Address: Equatable, Sendable {
        public let bytes: [UInt8]

        public init?(_ text: String) {
            var v4 = in_addr()
            var v6 = in6_addr()
            if inet_pton(AF_INET, text, &v4) == 1 {
                bytes = withUnsafeBytes(of: v4) { Array($0) }
            } else if inet_pton(AF_INET6, text, &v6) == 1 {
                bytes = withUnsafeBytes(of: v6) { Array($0) }
            } else {
                return nil
            }
        }

        init?(_ socket: UnsafeMutablePointer<sockaddr>?) {
            guard let socket else { return nil }
            switch Int32(socket.pointee.sa_family) {
            case AF_INET:
                bytes = socket.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { withUnsafeBytes(of: $0.pointee.sin_addr) { Array($0) } }
            case AF_INET6:
                bytes = socket.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { withUnsafeBytes(of: $0.pointee.sin6_addr) { Array($0) } }
            default:
                return nil
            }
        }

        public var text: String {
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            bytes.withUnsafeBytes { raw in
                _ = inet_ntop(bytes.count == 4 ? AF_INET : AF_INET6, raw.baseAddress, &buffer, socklen_t(buffer.count))
            }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }

        /// An IPv6 address that carries an IPv4 one (`::ffff:a.b.c.d`) is judged by the IPv4 address.
        var effective: [UInt8] {
            if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
                return Array(bytes[12..<16])
            }
            return bytes
        }

        /// What kind of non-public address this is, or nil for a public one.
        var blockedKind: String? {
            let b = effective
            if b.count == 4 {
                switch (b[0], b[1]) {
                case (0, _): return "unspecified"
                case (10, _): return "private"
                case (100, 64...127): return "carrier-grade NAT"
                case (127, _): return "loopback"
                case (169, 254): return "link-local (cloud metadata)"
                case (172, 16...31): return "private"
                case (192, 168): return "private"
                case (192, 0) where b[2] == 0 || b[2] == 2: return "reserved"
                case (198, 18...19): return "reserved"
                case (224...239, _): return "multicast"
                case (240...255, _): return "reserved"
                default: return nil
                }
            }
            if b.allSatisfy({ $0 == 0 }) { return "unspecified" }
            if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return "loopback" }
            if b[0] == 0xfe && (b[1] & 0xc0) == 0x80 { return "link-local (cloud metadata)" }
            if (b[0] & 0xfe) == 0xfc { return "private" }
            if b[0] == 0xff { return "multicast" }
            if b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8 { return "reserved" }
            return nil
        }
    }

    /// A network: an address and a prefix length.
    public struct Network: Sendable {
        let address: Address
        let prefix: Int

        public init?(_ text: String) {
            let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2, let address = Address(parts[0]), let prefix = Int(parts[1]),
                  (0...(address.bytes.count * 8)).contains(prefix)
            else { return nil }
            self.address = address
            self.prefix = prefix
        }

        func contains(_ other: Address) -> Bool {
            let network = address.effective
            let candidate = other.effective
            guard network.count == candidate.count else { return false }
            // A network written as an IPv4-mapped IPv6 one counts its prefix over the IPv4 part.
            var bits = prefix - (address.bytes.count - network.count) * 8
            for (x, y) in zip(network, candidate) where bits > 0 {
                let mask: UInt8 = bits >= 8 ? 0xff : ~(0xff >> UInt8(bits))
                if x & mask != y & mask { return false }
                bits -= 8
            }
            return true
        }
    }
}

extension URLGuard {
    /// `check`, on a thread of its own when the host is a name: resolving it may take seconds, which must
    /// not hold one of the few threads async tasks run on.
    public func checkOffThread(_ url: String, subject: String) async throws(Refusal) -> (host: String, port: Int, addresses: [String]) {
        if let host = URLComponents(string: url)?.host, Address(host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))) != nil {
            return try check(url, subject: subject)
        }
        let guardrail = self
        let result: Result<(host: String, port: Int, addresses: [String]), Refusal> = await withCheckedContinuation { done in
            Thread {
                do throws(Refusal) {
                    done.resume(returning: .success(try guardrail.check(url, subject: subject)))
                } catch {
                    done.resume(returning: .failure(error))
                }
            }.start()
        }
        return try result.get()
    }
}
