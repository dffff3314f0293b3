import Connectors
import Shared

/// What an action does.
public enum ActionKind: String, Sendable, CaseIterable {
    /// One record by id, or a page of records.
    case get
    /// Records whose fields equal the given values.
    case search
    case create
    case update
    case delete
    /// A raw call at the provider's API with the stored credentials.
    case httpRequest

    public var writes: Bool { self == .create || self == .update || self == .delete }

    /// The type of an action of this kind in the action-instance shape.
    public var instanceType: String {
        switch self {
        case .get: return "find-data-record-by-id"
        case .search: return "search-data-record"
        case .create: return "create-data-record"
        case .update: return "update-data-record"
        case .delete: return "delete-data-record"
        case .httpRequest: return "http-request"
        }
    }
}

/// One action of an app's catalog: served by id (`get_contact`) in the catalog shape and by key
/// (`get-contact`) in the action-instance shape.
public struct ActionDefinition: Sendable, Equatable {
    public var id: String
    public var name: String
    public var description: String
    public var kind: ActionKind
    /// The provider's object (`contacts`, `Contact`); nil for the raw HTTP request.
    public var providerObject: String?

    /// The action's key in the action-instance shape.
    public var key: String { id == "httprequest" ? "http-request" : id.replacingOccurrences(of: "_", with: "-") }

    public var writes: Bool { kind.writes }
}

/// The actions served for each provider: get, search, create, update and delete of contacts and of
/// accounts (companies in HubSpot), and the raw HTTP request.
public enum ActionCatalog {
    public static func actions(for provider: Provider) -> [ActionDefinition] {
        let app = provider.profile.displayName
        var actions = [ActionDefinition(
            id: "httprequest", name: "HTTP Request", description: "Make a raw HTTP request to the \(app) API with the account's credentials",
            kind: .httpRequest, providerObject: nil)]
        for catalog in provider.profile.catalogObjects {
            let (noun, plural, object) = (catalog.noun, catalog.plural, catalog.object)
            let title = noun.prefix(1).uppercased() + noun.dropFirst()
            let pluralTitle = plural.prefix(1).uppercased() + plural.dropFirst()
            actions += [
                ActionDefinition(id: "get_\(noun)", name: "Get \(title)",
                                 description: "Fetch a \(noun) by id, or a page of \(plural), from \(app)", kind: .get, providerObject: object),
                ActionDefinition(id: "search_\(plural)", name: "Search \(pluralTitle)",
                                 description: "Search for \(plural) in \(app) whose fields equal the given values", kind: .search,
                                 providerObject: object),
                ActionDefinition(id: "create_\(noun)", name: "Create \(title)", description: "Create a \(noun) in \(app)", kind: .create,
                                 providerObject: object),
                ActionDefinition(id: "update_\(noun)", name: "Update \(title)", description: "Update a \(noun) in \(app) by id",
                                 kind: .update, providerObject: object),
                ActionDefinition(id: "delete_\(noun)", name: "Delete \(title)", description: "Delete a \(noun) in \(app) by id",
                                 kind: .delete, providerObject: object),
            ]
        }
        return actions
    }

    /// An action by its catalog id or its instance key.
    public static func action(_ idOrKey: String, provider: Provider) -> ActionDefinition? {
        actions(for: provider).first { $0.id == idOrKey || $0.key == idOrKey }
    }
}
