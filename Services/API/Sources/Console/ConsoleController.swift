import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Postgres
import Schema
import Secrets
import Shared

/// The operations console at `/console`: server-rendered pages of a project, for the project's people
/// rather than its code. Signing in takes one of the project's API keys (`ConsoleSession`); every page
/// is then the session's project's: its operations (filtered and paged, newest first), one operation with
/// its request, result, logs and a bulk write's progress and failed rows, sending a failed write again,
/// its connections and their health, its installations with the last hour's counts and latencies, and its
/// integrations with their revisions. No page shows a credential, a key or a secret.
struct ConsoleController: Controller {
    let configuration: APIConfiguration
    let control: ControlData
    let database: PostgresPool
    let submitter: WriteSubmitter
    let operations: OperationsController
    let logger: Logger

    func addRoutes(to router: Router<APIContext>) {
        let console = router.group("console").add(middleware: ConsoleErrorMiddleware(logger: logger))
        console.get { _, _ in Self.redirect("/console/operations") }
        console.get("sign-in") { try await self.signInPage($0, $1) }
        console.post("sign-in") { try await self.signIn($0, $1) }
        let pages = console.group().add(middleware: ConsoleAuthentication(control: control, box: configuration.secrets, publicURL: configuration.publicURL))
        pages.post("sign-out") { _, _ in self.signOut() }
        pages.get("operations") { try await self.operationsPage($0, $1) }
        pages.get("operations/:operation") { try await self.operationPage($0, $1) }
        pages.get("operations/:operation/failed-records") { try await self.operations.failedRecords($0, $1) }
        pages.post("operations/:operation/resend") { try await self.resend($0, $1) }
        pages.get("connections") { try await self.connectionsPage($0, $1) }
        pages.get("installations") { try await self.installationsPage($0, $1) }
        pages.get("integrations") { try await self.integrationsPage($0, $1) }
    }

    /// Whether the console is reached over https (its cookie is then `Secure`).
    var secure: Bool { configuration.publicURL?.lowercased().hasPrefix("https://") == true }
}

// MARK: signing in and out

extension ConsoleController {
    func signInPage(_ request: Request, _ context: APIContext) async throws -> Response {
        if let session = ConsoleSession.from(request, box: configuration.secrets), (try? await control.project(forKey: session.key)) != nil {
            return Self.redirect("/console/operations")
        }
        return Self.page("sign-in", ["title": "Sign in"], context: context)
    }

    func signIn(_ request: Request, _ context: APIContext) async throws -> Response {
        try ConsoleAuthentication.sameOrigin(request, publicURL: configuration.publicURL)
        let form = try await ConsoleForm.of(request)
        let key = (form["key"] ?? "").trimmingCharacters(in: .whitespaces)
        guard !key.isEmpty else {
            return Self.page("sign-in", ["title": "Sign in", "message": "Enter one of your project's API keys."], status: .badRequest, context: context)
        }
        guard let project = try? await control.project(forKey: key) else {
            return Self.page("sign-in", ["title": "Sign in", "message": "That API key is not one of a project here."], status: .unauthorized,
                             context: context)
        }
        logger.info("console session started", metadata: ["project": "\(project.name)"])
        let cookie = try ConsoleSession(key: key).cookie(box: configuration.secrets, secure: secure)
        return Response(status: .seeOther, headers: [.location: "/console/operations", .setCookie: cookie, .cacheControl: "no-store"])
    }

    func signOut() -> Response {
        Response(status: .seeOther, headers: [.location: "/console/sign-in", .setCookie: ConsoleSession.ended(secure: secure), .cacheControl: "no-store"])
    }
}

// MARK: pages

extension ConsoleController {
    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }

    /// A page: `template` filling the layout with `values`, the project's name and the session's form token.
    static func page(_ template: String, _ values: [String: Any], status: HTTPResponse.Status = .ok, context: APIContext,
                     nav: String? = nil) -> Response
    {
        var values = values
        if let project = context.project, let session = context.consoleSession {
            values["project"] = project.name
            values["csrf"] = session.csrf
        }
        if let nav { values[nav] = true }
        let html = ConsoleTemplates.library.render(values, withTemplate: template) ?? ""
        return Response(status: status, headers: htmlHeaders, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// No script runs and nothing is framed or loaded from elsewhere; pages are not cached.
    static let htmlHeaders: HTTPFields = [
        .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
        .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        HTTPField.Name("X-Frame-Options")!: "DENY", HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "same-origin",
    ]
}

/// Console errors are pages too: a refusal shows its status and what is wrong; anything else is logged and
/// shown as a 503 with no detail.
struct ConsoleErrorMiddleware: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: APIContext, next: (Request, APIContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let problem as Problem {
            return ConsoleController.page("error", ["title": problem.title, "heading": problem.title, "detail": problem.detail],
                                          status: .init(code: problem.statusCode), context: context)
        } catch let error as HTTPError {
            return ConsoleController.page("error", ["title": error.status.reasonPhrase, "heading": error.status.reasonPhrase,
                                                    "detail": error.body ?? error.status.reasonPhrase],
                                          status: error.status, context: context)
        } catch {
            logger.error("console page failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return ConsoleController.page("error", ["title": "Unavailable", "heading": "Unavailable",
                                                    "detail": "The page could not be made now; try again."],
                                          status: .serviceUnavailable, context: context)
        }
    }
}
