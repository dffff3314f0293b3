import HTTPTypes
import Hummingbird
import Shared

/// Authentication, one middleware per API shape. Each sets what it proved on the `APIContext` and
/// refuses the request, in the error shape of its routes, before any handler runs.
extension Request {
    /// The project's API key: `X-Api-Key` (`x-api-key`: header names are not case-sensitive), or the
    /// `apiKey` query parameter.
    var apiKey: String? {
        headers[APIHeaders.apiKey] ?? uri.queryParameters["apiKey"].map(String.init)
    }
}

enum APIHeaders {
    static let apiKey = HTTPField.Name("X-Api-Key")!
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    static let operation = HTTPField.Name("x-operation-id")!
}

/// The Write and control APIs: the project's key, for the project the path names (401 for a missing or
/// unknown key, 404 for a project it does not open).
struct ProjectKeyAuthentication: RouterMiddleware {
    let control: ControlData

    func handle(_ request: Request, context: APIContext, next: (Request, APIContext) async throws -> Response) async throws -> Response {
        var context = context
        context.project = try await control.authenticate(key: request.apiKey, project: context.path("project"))
        return try await next(request, context)
    }
}

/// The unified CRM and pass-through APIs (the provider in `x-provider-name`, the customer's groupRef in
/// `x-customer-id`) and the action catalog (the app in the path, the customer in `linked_account_id`):
/// the project's key, the provider and the customer.
struct CustomerKeyAuthentication: RouterMiddleware {
    /// Where the request names its provider.
    enum ProviderSource: Sendable {
        case header(String)
        case path(String)
    }

    let control: ControlData
    let provider: ProviderSource
    let customerHeader: String

    static func unified(_ control: ControlData) -> CustomerKeyAuthentication {
        CustomerKeyAuthentication(control: control, provider: .header("x-provider-name"), customerHeader: "x-customer-id")
    }

    static func catalog(_ control: ControlData) -> CustomerKeyAuthentication {
        CustomerKeyAuthentication(control: control, provider: .path("app"), customerHeader: "linked_account_id")
    }

    func handle(_ request: Request, context: APIContext, next: (Request, APIContext) async throws -> Response) async throws -> Response {
        let project = try await control.project(forKey: request.apiKey)
        let provider: Provider
        switch self.provider {
        case .header(let name):
            guard let text = request.headers[HTTPField.Name(name)!], !text.isEmpty else {
                throw Problem.badRequest("the \(name) header is required (one of: \(Provider.names))", in: "header", name: name)
            }
            guard let named = Provider(rawValue: text.lowercased()) else {
                throw Problem.badRequest("provider '\(text)' is not supported; use one of: \(Provider.names)", in: "header", name: name)
            }
            provider = named
        case .path(let name):
            let text = context.path(name)
            guard let named = Provider(rawValue: text.lowercased()) else {
                throw Problem.notFound("\(name) '\(text)' is not served; use one of: \(Provider.names)", name: name)
            }
            provider = named
        }
        guard let groupRef = request.headers[HTTPField.Name(customerHeader)!], !groupRef.isEmpty else {
            throw Problem.badRequest("the \(customerHeader) header is required: the customer's groupRef", in: "header", name: customerHeader)
        }
        var context = context
        context.customer = Customer(project: project, groupRef: groupRef)
        context.provider = provider
        return try await next(request, context)
    }
}

/// Per-customer action instances: `Authorization: Bearer <customer token>`, a JWT signed by one of the
/// project's customer-token keys that names the customer.
struct CustomerTokenAuthentication: RouterMiddleware {
    let tokens: CustomerTokens

    func handle(_ request: Request, context: APIContext, next: (Request, APIContext) async throws -> Response) async throws -> Response {
        var context = context
        context.customer = try await tokens.customer(authorization: request.headers[.authorization])
        return try await next(request, context)
    }
}

extension Provider {
    /// Every provider's name, for messages that list them.
    static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}
