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
    static let customer = HTTPField.Name("x-customer-id")!
    static let provider = HTTPField.Name("x-provider-name")!
    static let operation = HTTPField.Name("x-operation-id")!
    static let linkedAccount = HTTPField.Name("linked_account_id")!
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

/// The unified CRM and pass-through APIs: `x-api-key`, the provider in `x-provider-name` and the
/// customer (its groupRef) in `x-customer-id`.
struct CustomerKeyAuthentication: RouterMiddleware {
    let control: ControlData

    func handle(_ request: Request, context: APIContext, next: (Request, APIContext) async throws -> Response) async throws -> Response {
        let project = try await control.project(forKey: request.apiKey)
        guard let providerName = request.headers[APIHeaders.provider], !providerName.isEmpty else {
            throw Problem.badRequest("the x-provider-name header is required (one of: \(Provider.names))",
                                     in: "header", name: "x-provider-name")
        }
        guard let provider = Provider(rawValue: providerName.lowercased()) else {
            throw Problem.badRequest("provider '\(providerName)' is not supported; use one of: \(Provider.names)",
                                     in: "header", name: "x-provider-name")
        }
        guard let groupRef = request.headers[APIHeaders.customer], !groupRef.isEmpty else {
            throw Problem.badRequest("the x-customer-id header is required: the customer's groupRef", in: "header", name: "x-customer-id")
        }
        var context = context
        context.customer = Customer(project: project, groupRef: groupRef)
        context.provider = provider
        return try await next(request, context)
    }
}

/// The action catalog: `x-api-key`, the app in the path and the customer in `linked_account_id`.
struct LinkedAccountAuthentication: RouterMiddleware {
    let control: ControlData

    func handle(_ request: Request, context: APIContext, next: (Request, APIContext) async throws -> Response) async throws -> Response {
        let project = try await control.project(forKey: request.apiKey)
        let slug = context.path("app")
        guard let provider = Provider(rawValue: slug.lowercased()) else {
            throw ActionFailure(status: 404, message: "app '\(slug)' is not served; use one of: \(Provider.names)")
        }
        guard let groupRef = request.headers[APIHeaders.linkedAccount], !groupRef.isEmpty else {
            throw ActionFailure(status: 400, message: "the linked_account_id header is required: the customer's groupRef",
                                issues: [.init(path: "linked_account_id", message: "is required")])
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
