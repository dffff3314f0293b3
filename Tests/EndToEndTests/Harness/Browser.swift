import Foundation
import HTTPClient
import Shared
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A real browser for the console's tests: Debian's headless Chromium, driven through its chromedriver
/// with the W3C WebDriver protocol (JSON over HTTP). It keeps its own cookies, follows redirects and
/// refreshes pages as a user's browser does; every `screenshot` lands in the stack's log folder.
final class Browser: @unchecked Sendable {
    private let driver: Process
    private let base: String
    private let session: String
    private let http: HTTPClient
    let screenshots: String

    /// The WebDriver key of an element reference.
    private static let elementKey = "element-6066-11e4-a52e-4f735466cecf"

    init(stack: TestStack) async throws {
        http = stack.http
        screenshots = "\(stack.logDirectory)/screenshots"
        try FileManager.default.createDirectory(atPath: screenshots, withIntermediateDirectories: true)
        let chromedriver = ProcessInfo.processInfo.environment["WRITEBACK_TEST_CHROMEDRIVER"] ?? "/usr/bin/chromedriver"
        guard FileManager.default.isExecutableFile(atPath: chromedriver) else {
            throw HarnessError("no chromedriver at \(chromedriver): scripts/test installs Debian's chromium and chromium-driver")
        }
        let port = try freePort()
        driver = Process()
        driver.executableURL = URL(fileURLWithPath: chromedriver)
        driver.arguments = ["--port=\(port)", "--allowed-ips=127.0.0.1", "--log-path=\(stack.logDirectory)/chromedriver.log"]
        driver.standardOutput = FileHandle.nullDevice
        driver.standardError = FileHandle.nullDevice
        try driver.run()
        base = "http://127.0.0.1:\(port)"
        var ready = false
        for _ in 0..<100 {
            if let status = try? await http.execute(HTTPRequest(method: "GET", url: "\(base)/status", timeout: 2)), status.status == 200 {
                ready = true
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        guard ready else { throw HarnessError("chromedriver did not start; see \(stack.logDirectory)/chromedriver.log") }
        let binary = ProcessInfo.processInfo.environment["WRITEBACK_TEST_CHROMIUM"] ?? "/usr/bin/chromium"
        let capabilities: JSONValue = ["capabilities": ["alwaysMatch": [
            "browserName": "chrome",
            "goog:chromeOptions": [
                "binary": .string(binary),
                "args": .array(["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
                                "--user-data-dir=\(stack.logDirectory)/chromium-\(UUID().uuidString.prefix(8))"].map { JSONValue.string($0) }),
            ],
        ]]]
        let started = try await Self.send(http, "POST", "\(base)/session", capabilities, timeout: 60)
        guard let id = started["sessionId"]?.stringValue else { throw HarnessError("chromium did not start: \(started)") }
        session = "\(base)/session/\(id)"
    }

    /// Opens a browser, hands it to `body`, and closes it however `body` ends.
    static func using<T>(_ stack: TestStack, _ body: (Browser) async throws -> T) async throws -> T {
        let browser = try await Browser(stack: stack)
        do {
            let result = try await body(browser)
            await browser.quit()
            return result
        } catch {
            try? await browser.screenshot("failed-\(Int(Date().timeIntervalSince1970))")
            await browser.quit()
            throw error
        }
    }

    /// Ends the session (Chromium quits) and the driver.
    func quit() async {
        guard driver.isRunning else { return }
        _ = try? await http.execute(HTTPRequest(method: "DELETE", url: session, timeout: 10))
        Glibc.kill(driver.processIdentifier, SIGTERM)
    }

    deinit {
        if driver.isRunning { Glibc.kill(driver.processIdentifier, SIGKILL) }
    }

    // MARK: the protocol

    @discardableResult
    private static func send(_ http: HTTPClient, _ method: String, _ url: String, _ body: JSONValue? = nil, timeout: Double = 30)
        async throws -> JSONValue
    {
        let response = try await http.execute(HTTPRequest(
            method: method, url: url, headers: [("Content-Type", "application/json")],
            body: Array(try JSONCoding.encodeString(body ?? .object([:])).utf8), timeout: timeout))
        let json = (try? JSONCoding.decode(JSONValue.self, from: response.body)) ?? .null
        guard response.status == 200 else {
            throw HarnessError("WebDriver \(method) \(url) answered \(response.status): \(json["value"]?["message"]?.stringValue ?? response.text)")
        }
        return json["value"] ?? .null
    }

    @discardableResult
    private func command(_ method: String, _ path: String, _ body: JSONValue? = nil) async throws -> JSONValue {
        try await Self.send(http, method, session + path, method == "GET" ? nil : (body ?? .object([:])))
    }

    // MARK: what a user does

    /// Opens a page and waits for it to load.
    func open(_ url: String) async throws {
        try await command("POST", "/url", ["url": .string(url)])
    }

    var url: String {
        get async throws { try await command("GET", "/url").stringValue ?? "" }
    }

    var title: String {
        get async throws { try await command("GET", "/title").stringValue ?? "" }
    }

    /// The page's HTML as the browser holds it.
    var source: String {
        get async throws { try await command("GET", "/source").stringValue ?? "" }
    }

    /// The elements a CSS selector finds.
    func elements(_ selector: String) async throws -> [String] {
        let found = try await command("POST", "/elements", ["using": "css selector", "value": .string(selector)])
        return (found.arrayValue ?? []).compactMap { $0[Self.elementKey]?.stringValue }
    }

    /// The first element a CSS selector finds, waiting up to 5 s for it (a form sent a moment ago may not
    /// have brought its page yet); fails the test when there is none.
    func element(_ selector: String) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(5)
        while true {
            if let first = try await elements(selector).first { return first }
            guard ContinuousClock.now < deadline else { throw HarnessError("no element \(selector) on \(try await url)") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    func text(_ selector: String) async throws -> String {
        try await command("GET", "/element/\(try await element(selector))/text").stringValue ?? ""
    }

    func texts(_ selector: String) async throws -> [String] {
        var texts: [String] = []
        for id in try await elements(selector) { texts.append(try await command("GET", "/element/\(id)/text").stringValue ?? "") }
        return texts
    }

    func attribute(_ selector: String, _ name: String) async throws -> String? {
        try await command("GET", "/element/\(try await element(selector))/attribute/\(name)").stringValue
    }

    func type(_ selector: String, _ text: String) async throws {
        let id = try await element(selector)
        try await command("POST", "/element/\(id)/clear")
        try await command("POST", "/element/\(id)/value", ["text": .string(text)])
    }

    /// Chooses the option of a `<select>` whose value is `value`.
    func choose(_ selector: String, _ value: String) async throws {
        try await click("\(selector) option[value=\"\(value)\"]")
    }

    func click(_ selector: String) async throws {
        try await command("POST", "/element/\(try await element(selector))/click")
    }

    /// A cookie of the page's site as the browser keeps it (`{name, value, httpOnly, sameSite, path, secure}`).
    func cookie(_ name: String) async throws -> JSONValue? {
        try? await command("GET", "/cookie/\(name)")
    }

    /// Saves a screenshot of the page as `name.png` in the log folder's screenshots.
    @discardableResult
    func screenshot(_ name: String) async throws -> String {
        let encoded = try await command("GET", "/screenshot").stringValue ?? ""
        guard let data = Data(base64Encoded: encoded) else { throw HarnessError("the screenshot \(name) is not base64") }
        let path = "\(screenshots)/\(name).png"
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Waits until `condition` holds of the page (re-read each half second; the page may refresh itself).
    func wait(_ what: String, timeout: Duration = .seconds(30), until condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if (try? await condition()) == true { return }
            try await Task.sleep(for: .milliseconds(500))
        }
        try await screenshot("timed-out-\(what.replacingOccurrences(of: " ", with: "-"))")
        throw HarnessError("timed out waiting for \(what) on \(try await url)")
    }
}
