import HTTPClient
import Shared

/// The connector of each provider: adding a provider is its folder and a line here.
public struct Connectors: Sendable {
    let salesforce: SalesforceConnector
    private let hubspot: HubSpotConnector
    private let pipedrive: PipedriveConnector

    public init(client: HTTPClient, timeout: Double, hosts: ProviderHosts = ProviderHosts()) {
        salesforce = SalesforceConnector(client: client, timeout: timeout, hosts: hosts)
        hubspot = HubSpotConnector(client: client, timeout: timeout, hosts: hosts)
        pipedrive = PipedriveConnector(client: client, timeout: timeout, hosts: hosts)
    }

    public func connector(for provider: Provider) -> any Connector {
        switch provider {
        case .salesforce: return salesforce
        case .hubspot: return hubspot
        case .pipedrive: return pipedrive
        }
    }
}

extension Provider {
    /// What is known of the provider without calling it.
    public var profile: ProviderProfile {
        switch self {
        case .salesforce: return .salesforce
        case .hubspot: return .hubspot
        case .pipedrive: return .pipedrive
        }
    }
}
