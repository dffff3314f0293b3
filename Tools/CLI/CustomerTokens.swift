import ArgumentParser
import Foundation
import Secrets
import Shared

extension Writeback {
    /// `writeback token-key create|list|revoke`: the keys that sign customer tokens.
    struct TokenKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "token-key", abstract: "Make, list or revoke the keys that sign customer tokens.",
            subcommands: [Create.self, List.self, Revoke.self])

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Make a signing key; prints its key and secret (the secret is shown only this once).")
            @Option var label: String?
            @OptionGroup var api: APIOptions

            func run() async throws {
                let client = try api.client()
                defer { client.shutdown() }
                let made = try await client.call("POST", "\(client.projectPath)/customer-token-keys",
                                                 .object(label.map { ["label": .string($0)] } ?? [:]))
                print("WRITEBACK_TOKEN_KEY=\(made["key"]?.stringValue ?? "")")
                print("WRITEBACK_TOKEN_SECRET=\(made["secret"]?.stringValue ?? "")")
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List the project's signing keys.")
            @OptionGroup var api: APIOptions

            func run() async throws {
                let client = try api.client()
                defer { client.shutdown() }
                let listed = try await client.call("GET", "\(client.projectPath)/customer-token-keys")
                for key in listed["keys"]?.arrayValue ?? [] {
                    let state = key["revokedAt"]?.stringValue.map { "revoked \($0)" } ?? "active"
                    print("\(key["key"]?.stringValue ?? "")  \(key["createdAt"]?.stringValue ?? "")  \(state)  \(key["label"]?.stringValue ?? "")")
                }
            }
        }

        struct Revoke: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Revoke a signing key: its tokens stop working.")
            @Argument var key: String
            @OptionGroup var api: APIOptions

            func run() async throws {
                let client = try api.client()
                defer { client.shutdown() }
                _ = try await client.call("DELETE", "\(client.projectPath)/customer-token-keys/\(escaped(key))")
                print("revoked \(key)")
            }
        }
    }

    /// `writeback customer-token --customer <groupRef>`: signs a customer token offline, as a backend does.
    struct CustomerToken: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "customer-token", abstract: "Sign a token for one customer (HS256, with a key from token-key create).")
        @Option(help: "The customer's groupRef.") var customer: String
        @Option(help: "The customer's name, shown nowhere but useful in logs.") var name: String?
        @Option(help: "The signing key (or env WRITEBACK_TOKEN_KEY).") var key: String?
        @Option(help: "How long the token lives, in seconds.") var expiresIn = 3600

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            guard let key = key ?? environment["WRITEBACK_TOKEN_KEY"] else {
                throw ValidationError("a signing key is needed: --key or WRITEBACK_TOKEN_KEY")
            }
            guard let secret = environment["WRITEBACK_TOKEN_SECRET"], secret.utf8.count >= 32 else {
                throw ValidationError("the signing secret is read from WRITEBACK_TOKEN_SECRET (at least 32 characters)")
            }
            var claims: [String: JSONValue] = [
                "iss": .string(key), "id": .string(customer), "exp": .number((Date().timeIntervalSince1970 + Double(expiresIn)).rounded()),
            ]
            if let name { claims["name"] = .string(name) }
            print(HMACToken.sign(payload: try JSONCoding.encode(JSONValue.object(claims)), secret: Array(secret.utf8)))
        }
    }
}
