import Foundation
import Hummingbird
import ServiceLifecycle
import Logging
import Shared
import Synchronization

/// Simulators of the Salesforce REST and HubSpot CRM v3 APIs that Writeback writes to, with their real
/// status codes and bodies, for development, tests and benchmarks. State lives in memory.
public final class Sandbox: Sendable {
    let configuration: SandboxConfiguration
    let state: Mutex<SandboxState>

    public init(configuration: SandboxConfiguration) {
        self.configuration = configuration
        var initial = SandboxState()
        initial.latencyMilliseconds = configuration.latencyMilliseconds
        for (provider, tokens) in [("salesforce", configuration.salesforceTokens), ("hubspot", configuration.hubspotTokens),
                                   ("pipedrive", configuration.pipedriveTokens)] {
            for entry in tokens {
                let (token, org) = Self.tokenAndOrg(entry)
                initial.accessTokens[token] = .init(provider: provider, org: org)
            }
        }
        for entry in configuration.salesforceRefreshTokens.union(configuration.hubspotRefreshTokens).union(configuration.pipedriveRefreshTokens) {
            let (token, org) = Self.tokenAndOrg(entry)
            initial.refreshTokenOrgs[token] = org
        }
        state = Mutex(initial)
    }

    /// The providers simulated.
    static let providers = ["salesforce", "hubspot", "pipedrive"]

    /// `token@org` names the org a configured token belongs to; a bare token is the `default` org's.
    static func tokenAndOrg(_ entry: String) -> (token: String, org: String) {
        guard let at = entry.lastIndex(of: "@") else { return (entry, "default") }
        return (String(entry[..<at]), String(entry[entry.index(after: at)...]))
    }

    /// The sandbox's listener: plain HTTP on `port`. Clients that only speak HTTPS (Salesforce's) reach
    /// it through a TLS terminator that sets `X-Forwarded-Proto`.
    public func makeService(logger: Logger) throws -> some Service {
        let router = Router()
        addSalesforceRoutes(to: router)
        addBulkRoutes(to: router)
        addHubSpotRoutes(to: router)
        addPipedriveRoutes(to: router)
        addOAuthRoutes(to: router)
        addQueryRoutes(to: router)
        addMetadataRoutes(to: router)
        addControlRoutes(to: router)
        return Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "sandbox"),
            logger: logger)
    }

    /// The default limits of a provider's orgs.
    func defaultLimits(_ provider: String) -> OrgLimits {
        switch provider {
        case "hubspot": return configuration.hubspotLimits
        case "pipedrive": return configuration.pipedriveLimits
        default: return configuration.salesforceLimits
        }
    }

    /// Runs `body` on an org, making it on first use.
    func withOrg<T>(_ provider: String, _ name: String, _ body: (inout Org) -> T) -> T {
        state.withLock { state in
            let key = "\(provider)/\(name)"
            var org = state.orgs[key] ?? Org(limits: defaultLimits(provider))
            defer { state.orgs[key] = org }
            return body(&org)
        }
    }
    func log(provider: String, method: String, path: String, object: String, recordId: String?, status: Int,
             body: JSONValue?)
    {
        state.withLock { state in
            state.requests.append(
                LoggedRequest(
                    sequence: state.requests.count + 1, provider: provider, method: method, path: path, object: object,
                    recordId: recordId, status: status, body: body, receivedAt: Timestamp.now()))
        }
    }
}

/// A JSON response with the given status.
func jsonResponse(_ status: Int, _ value: some Encodable, headers: HTTPFields = [:]) -> Response {
    var headers = headers
    headers[.contentType] = "application/json;charset=UTF-8"
    let bytes = (try? JSONCoding.encode(value)) ?? Array("{}".utf8)
    return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
}

/// Reads a request body as JSON; nil when it is empty or not JSON.
func jsonBody(_ request: inout Request) async -> JSONValue? {
    guard let buffer = try? await request.collectBody(upTo: 16 << 20), buffer.readableBytes > 0 else { return nil }
    return try? JSONCoding.decode(JSONValue.self, from: buffer.readableBytesView)
}

/// What a request's bearer token is worth to a provider.
enum TokenCheck {
    case valid(org: String)
    case missing
    /// Known, but expired this many seconds ago.
    case expired(seconds: Int)
}

extension Sandbox {
    func checkToken(_ request: Request, provider: String) -> TokenCheck {
        guard let token = bearerToken(request) ?? (provider == "pipedrive" ? Self.pipedriveAPIToken(request) : nil) else {
            return .missing
        }
        return state.withLock { state in
            guard let known = state.accessTokens[token], known.provider == provider else { return .missing }
            let now = Date().timeIntervalSince1970
            if let expires = known.expires, expires <= now { return .expired(seconds: Int(now - expires)) }
            return .valid(org: known.org)
        }
    }
}

func bearerToken(_ request: Request) -> String? {
    guard let value = request.headers[.authorization], value.hasPrefix("Bearer ") else { return nil }
    return String(value.dropFirst("Bearer ".count))
}

/// Runs services side by side until all end.
