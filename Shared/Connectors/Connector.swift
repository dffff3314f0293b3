import HTTPClient
import Shared

/// Where and as whom a connector calls a provider, resolved from an installation.
public struct Connection: Sendable {
    /// The provider's API base: a Salesforce instance URL, the HubSpot API host.
    public var baseURL: String
    public var accessToken: String

    public init(baseURL: String, accessToken: String) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.accessToken = accessToken
    }
}

/// One single-record write, in the provider's terms.
public struct ConnectorWrite: Sendable {
    public var type: WriteType
    /// The provider's object (Contact, contacts, …).
    public var object: String
    public var recordId: String?
    public var fields: [String: JSONValue]
    public var associations: JSONValue?

    public init(type: WriteType, object: String, recordId: String?, fields: [String: JSONValue], associations: JSONValue?) {
        self.type = type
        self.object = object
        self.recordId = recordId
        self.fields = fields
        self.associations = associations
    }
}

/// What a provider made of a write.
public enum ConnectorOutcome: Sendable, Equatable {
    /// Applied. `data` is the record as the provider describes it after the write.
    case applied(recordId: String, data: [String: JSONValue], status: Int)
    /// Refused for good (validation, not found, auth): sending it again would not help.
    case rejected(WriteError, status: Int)
    /// Not applied for now (rate limit, outage, lock): worth sending again later. `notSent` is true when
    /// the request cannot have reached the provider.
    case retryable(WriteError, status: Int?, notSent: Bool)
}

extension ConnectorOutcome {
    /// applied, rejected or retryable: a metrics label.
    public var name: String {
        switch self {
        case .applied: return "applied"
        case .rejected: return "rejected"
        case .retryable: return "retryable"
        }
    }
}

/// A provider's write API.
public protocol Connector: Sendable {
    func write(_ write: ConnectorWrite, connection: Connection) async -> ConnectorOutcome
}

extension Connector {
    /// Sends a request and turns a transport failure into a retryable outcome; hands any HTTP response
    /// to `interpret`.
    func call(
        _ client: HTTPClient, _ request: HTTPRequest, interpret: (HTTPResponse) -> ConnectorOutcome
    ) async -> ConnectorOutcome {
        do {
            return interpret(try await client.execute(request))
        } catch let error as HTTPClientError {
            return .retryable(
                WriteError(message: "provider unreachable: \(error.message)", code: error.isTimeout ? "TIMEOUT" : "UNREACHABLE"),
                status: nil, notSent: error.notSent)
        } catch {
            return .retryable(WriteError(message: "provider call failed: \(error)"), status: nil, notSent: false)
        }
    }

    func jsonBody(_ value: some Encodable) -> [UInt8] {
        (try? JSONCoding.encode(value)) ?? Array("{}".utf8)
    }
}

/// The connector for each provider.
public struct Connectors: Sendable {
    private let salesforce: SalesforceConnector
    private let hubspot: HubSpotConnector

    public init(client: HTTPClient, timeout: Double) {
        salesforce = SalesforceConnector(client: client, timeout: timeout)
        hubspot = HubSpotConnector(client: client, timeout: timeout)
    }

    public func connector(for provider: Provider) -> any Connector {
        switch provider {
        case .salesforce: return salesforce
        case .hubspot: return hubspot
        }
    }
}
