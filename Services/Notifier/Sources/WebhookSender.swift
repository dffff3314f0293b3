import Foundation
import HTTPClient
import Secrets
import Shared

/// Sends one delivery attempt: checks the destination's URL (and each redirect's) with the guard, signs
/// the body as Standard Webhooks has it, posts it to the addresses the guard checked, and says what the
/// attempt came to.
struct WebhookSender: Sendable {
    let client: HTTPClient
    let configuration: NotifierConfiguration

    /// A claimed delivery, as `NotificationStatements.claim` answers it.
    struct Delivery: Sendable {
        var id: String
        var attempt: Int
        /// The attempt's place in its round (since it was last sent again), for the retry schedule.
        var round: Int
        var eventId: String
        var body: [UInt8]
        var destinationId: String
        var url: String
        var sealedHeaders: String?
        var sealedSecret: String
        var projectId: String
        /// When the event happened (seconds since the epoch).
        var created: Double
    }

    struct Attempt: Sendable {
        var status: Int?
        var error: String?
        var outcome: NotificationStatements.Outcome
    }

    static let maxRedirects = 3

    func send(_ delivery: Delivery) async -> Attempt {
        let key: [UInt8], extra: [(String, String)]
        do {
            let secret = try configuration.secrets.open(delivery.sealedSecret, context: DestinationSeal.signingSecret(delivery.destinationId))
            guard let bytes = StandardWebhooks.key(of: String(decoding: secret, as: UTF8.self)) else {
                return Attempt(status: nil, error: "the destination's signing secret is not readable", outcome: .failed)
            }
            key = bytes
            extra = try delivery.sealedHeaders.map {
                try Self.headers(configuration.secrets.open($0, context: DestinationSeal.headers(delivery.destinationId)))
            } ?? []
        } catch {
            return Attempt(status: nil, error: "the destination's sealed values cannot be opened with this key: \(error)", outcome: .failed)
        }
        let deadline = ContinuousClock.now + .milliseconds(Int(configuration.timeout * 1000))
        var url = delivery.url
        for hop in 0...Self.maxRedirects {
            let target: (host: String, port: Int, addresses: [String])
            do {
                target = try await configuration.guardrail.checkOffThread(url, subject: "the destination URL")
            } catch {
                let said = hop == 0 ? error.message : "redirect to \(url) refused: \(error.message)"
                // A name that does not resolve now may resolve later; an address refused stays refused.
                return error.unresolved ? retry(nil, said, delivery) : Attempt(status: nil, error: said, outcome: .failed)
            }
            let left = deadline - ContinuousClock.now
            let seconds = Double(left.components.seconds) + Double(left.components.attoseconds) / 1e18
            guard seconds > 0.001 else { return retry(nil, "no answer within \(Int(configuration.timeout)) s", delivery) }
            // The destination's own headers (credentials, often) go only where it named.
            var headers = Self.sameOrigin(url, delivery.url) ? extra : []
            headers.append(("content-type", "application/json"))
            headers.append(("user-agent", "Writeback-Webhooks/1"))
            headers += StandardWebhooks.headers(id: delivery.eventId, timestamp: Int(Date().timeIntervalSince1970), body: delivery.body, key: key)
            var request = HTTPRequest(method: "POST", url: url, headers: headers, body: delivery.body, timeout: seconds)
            request.direct = true
            if URLGuard.Address(target.host) == nil {
                // Connect to the addresses checked, not to what DNS answers next (`+`: the entry expires).
                let addresses = target.addresses.map { $0.contains(":") ? "[\($0)]" : $0 }.joined(separator: ",")
                request.pinned = "+\(target.host):\(target.port):\(addresses)"
            }
            request.maxResponseBytes = configuration.maxResponseBytes
            let response: HTTPResponse
            do {
                response = try await client.execute(request)
            } catch let error as HTTPClientError {
                let said = error.isTimeout ? "no answer within \(Int(configuration.timeout)) s" : error.message
                return retry(nil, said, delivery)
            } catch {
                return retry(nil, "\(error)", delivery)
            }
            switch response.status {
            case 200..<300:
                return Attempt(status: response.status, error: nil, outcome: .delivered)
            case 307, 308:
                guard let location = response.headers["location"],
                      let next = URL(string: location, relativeTo: URL(string: url))?.absoluteString
                else { return Attempt(status: response.status, error: "redirected without a usable Location", outcome: .failed) }
                guard !(url.lowercased().hasPrefix("https:") && next.lowercased().hasPrefix("http:")) else {
                    return Attempt(status: response.status, error: "redirect to \(next) refused: it leaves https", outcome: .failed)
                }
                url = next
            case 408, 429, 500..<600:
                return retry(response.status, Self.excerpt(response), delivery)
            default:
                let why = (300..<400).contains(response.status)
                    ? "redirected with HTTP \(response.status); only 307 and 308 are followed, as they keep the POST"
                    : Self.excerpt(response)
                return Attempt(status: response.status, error: why, outcome: .failed)
            }
        }
        return Attempt(status: nil, error: "redirected more than \(Self.maxRedirects) times", outcome: .failed)
    }

    private func retry(_ status: Int?, _ error: String, _ delivery: Delivery) -> Attempt {
        Attempt(status: status, error: error, outcome: .retry(delay: configuration.schedule.delay(afterAttempt: delivery.round)))
    }

    /// Whether two URLs have the same scheme, host and port.
    static func sameOrigin(_ one: String, _ other: String) -> Bool {
        guard let a = URLComponents(string: one), let b = URLComponents(string: other) else { return false }
        return a.scheme?.lowercased() == b.scheme?.lowercased() && a.host?.lowercased() == b.host?.lowercased() && a.port == b.port
    }

    /// An answer's status and the start of its body, for the attempt's record (without NUL, which
    /// PostgreSQL's text does not hold: the body is the endpoint's, anything may be in it).
    static func excerpt(_ response: HTTPResponse) -> String {
        let text = String(decoding: response.body.prefix(200).filter { $0 != 0 }, as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return "HTTP \(response.status)" + (text.isEmpty ? "" : ": \(text)")
    }

    /// A destination's extra headers, sealed as a JSON object of strings.
    static func headers(_ bytes: [UInt8]) throws -> [(String, String)] {
        guard let object = try JSONReader.read(bytes).objectValue else { return [] }
        return object.keys.sorted().compactMap { name in object[name]?.stringValue.map { (name, $0) } }
    }
}
