import Foundation
import HTTPTypes
import Hummingbird
import Secrets
import Shared

/// A console session: the project API key its user signed in with and the token its forms carry, sealed
/// with `WRITEBACK_ENCRYPTION_KEY` into a cookie that is `HttpOnly` (no script reads it), `SameSite=Strict`
/// (no other site's page sends it) and, behind https, `Secure`. The key is checked on every request, so a
/// revoked key ends its sessions within `API_CONTROL_CACHE_SECONDS`.
struct ConsoleSession: Codable, Sendable {
    static let cookieName = "writeback_console"
    /// How long a session lasts after signing in.
    static let lifetime: TimeInterval = 12 * 3600
    private static let sealingContext = "console-session"

    /// The project's API key.
    var key: String
    /// The token every form of the session carries (`csrf`), compared with this one before a form is acted on.
    var csrf: String
    /// When the session began (seconds since 1970).
    var issued: Double

    init(key: String) {
        self.key = key
        csrf = HMACToken.base64URL(randomBytes(24))
        issued = Date().timeIntervalSince1970
    }

    /// The session a request's cookie holds, if it holds a current one sealed by this deployment.
    static func from(_ request: Request, box: SecretBox) -> ConsoleSession? {
        guard let sealed = request.cookies[cookieName]?.value, !sealed.isEmpty,
              let bytes = try? box.open(sealed, context: sealingContext),
              let session = try? JSONCoding.decode(ConsoleSession.self, from: bytes),
              Date().timeIntervalSince1970 - session.issued < lifetime
        else { return nil }
        return session
    }

    /// The `Set-Cookie` value that holds this session.
    func cookie(box: SecretBox, secure: Bool) throws -> String {
        let sealed = try box.seal(try JSONCoding.encode(self), context: Self.sealingContext)
        return Self.attributes("\(Self.cookieName)=\(sealed)", maxAge: Int(Self.lifetime), secure: secure)
    }

    /// The `Set-Cookie` value that ends a session.
    static func ended(secure: Bool) -> String {
        attributes("\(cookieName)=", maxAge: 0, secure: secure)
    }

    private static func attributes(_ pair: String, maxAge: Int, secure: Bool) -> String {
        "\(pair); Path=/console; Max-Age=\(maxAge); HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "")
    }

    /// Whether a form's token is this session's (compared in constant time).
    func accepts(csrf token: String?) -> Bool {
        guard let token else { return false }
        return constantTimeEquals(Array(token.utf8), Array(csrf.utf8))
    }
}

/// A form as browsers send it (`application/x-www-form-urlencoded`).
struct ConsoleForm: Sendable {
    static let maxBytes = 64 * 1024
    var fields: [String: String] = [:]

    /// The form a request sends (at most 64 KiB; more is a 413).
    static func of(_ request: Request) async throws -> ConsoleForm {
        var request = request
        do {
            return ConsoleForm(Array(try await request.collectBody(upTo: maxBytes).readableBytesView))
        } catch {
            throw Problem(title: "Content Too Large", status: 413, detail: "a console form is at most \(maxBytes) bytes")
        }
    }

    init(_ bytes: [UInt8]) {
        for pair in String(decoding: bytes, as: UTF8.self).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = Self.decode(parts[0]) else { continue }
            fields[name] = parts.count > 1 ? Self.decode(parts[1]) ?? "" : ""
        }
    }

    subscript(_ name: String) -> String? { fields[name] }

    private static func decode(_ text: Substring) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
}

/// The console's pages need a current session: without one they send the browser to the sign-in page;
/// with one the request is the session's project's. A form (any request but GET and HEAD) must also carry
/// the session's token and, when the browser names its origin, come from the console's own.
struct ConsoleAuthentication: RouterMiddleware {
    let control: ControlData
    let box: SecretBox
    let publicURL: String?

    func handle(_ request: Request, context: APIContext, next: (Request, APIContext) async throws -> Response) async throws -> Response {
        guard let session = ConsoleSession.from(request, box: box),
              let project = try? await control.project(forKey: session.key)
        else {
            return Response(status: .seeOther, headers: [.location: "/console/sign-in", .cacheControl: "no-store"])
        }
        var context = context
        context.project = project
        context.consoleSession = session
        if request.method != .get && request.method != .head {
            try ConsoleAuthentication.sameOrigin(request, publicURL: publicURL)
            let form = try await ConsoleForm.of(request)
            guard session.accepts(csrf: form["csrf"]) else {
                throw Problem(title: "Forbidden", status: 403, detail: "the form is not from this session's console page; reload the page and try again")
            }
            context.consoleForm = form
            return try await next(request, context)
        }
        return try await next(request, context)
    }

    /// Refuses a form another site's page sent: one whose `Origin` is not the console's own (its host, or
    /// `API_PUBLIC_URL`'s origin), is `null`, or, without an `Origin`, that the browser marks cross-site.
    static func sameOrigin(_ request: Request, publicURL: String? = nil) throws {
        func refuse(_ what: String) -> Problem {
            Problem(title: "Forbidden", status: 403, detail: "the form was sent from another site (\(what))")
        }
        guard let origin = request.headers[.origin] else {
            if request.headers[HTTPField.Name("Sec-Fetch-Site")!] == "cross-site" { throw refuse("Sec-Fetch-Site: cross-site") }
            return
        }
        guard let url = URL(string: origin), let host = url.host, origin != "null" else { throw refuse(origin) }
        let named = host + (url.port.map { ":\($0)" } ?? "")
        if named == (request.head.authority ?? "") { return }
        if let publicURL, let own = URL(string: publicURL), own.scheme == url.scheme, own.host == host, own.port == url.port { return }
        throw refuse(origin)
    }
}
