import Hummingbird
import Shared

/// The context of an api request: Hummingbird's own, and whom the request was authenticated as. The
/// authentication middleware of the route's API shape sets it before the handler runs.
struct APIContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// The project whose API key (or customer-token key) the request carries.
    var project: ControlData.Project?
    /// The customer a unified, catalog or customer-token request acts for.
    var customer: Customer?
    /// The provider a unified request (`x-provider-name`) or a catalog request (its app) names.
    var provider: Provider?
    /// The console session a console page is requested in, and the form it sent.
    var consoleSession: ConsoleSession?
    var consoleForm: ConsoleForm?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// The authenticated project. A handler asks for it only behind an authentication middleware.
    var authenticatedProject: ControlData.Project {
        get throws(Problem) {
            guard let project = project ?? customer?.project else { throw .unauthorized("the request is not authenticated") }
            return project
        }
    }

    /// The authenticated customer and the provider its request names.
    var authenticatedCustomer: (customer: Customer, provider: Provider) {
        get throws(Problem) {
            guard let customer, let provider else { throw .unauthorized("the request names no customer") }
            return (customer, provider)
        }
    }

    /// A path parameter (empty when the route has none of that name).
    func path(_ name: String) -> String {
        parameters.get(name) ?? ""
    }
}
