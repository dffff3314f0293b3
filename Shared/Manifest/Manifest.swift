import Connectors
import Foundation
import Shared
import Yams

/// An `amp.yaml`: the integrations of a project, each with what it reads, writes and proxies.
public struct Manifest: Codable, Sendable, Equatable {
    public var specVersion: String
    public var integrations: [IntegrationSpec]

    /// The manifest versions this reader understands.
    public static let specVersions = ["1.0.0"]

    /// Reads and checks a manifest; every problem found comes back, each with where it is.
    public static func parse(_ yaml: String) -> Result<Manifest, ManifestErrors> {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            return .failure(ManifestErrors(issues: [ManifestIssue(yamlError: error)]))
        } catch {
            return .failure(ManifestErrors(issues: [ManifestIssue(path: "", line: nil, column: nil, message: "\(error)")]))
        }
        guard let root else {
            return .failure(ManifestErrors(issues: [ManifestIssue(path: "", line: 1, column: 1, message: "the manifest is empty")]))
        }
        var checker = ManifestChecker()
        checker.check(root)
        guard checker.issues.isEmpty else { return .failure(ManifestErrors(issues: checker.issues)) }
        do {
            return .success(try JSONCoding.decode(Manifest.self, from: JSONCoding.encode(json(root))))
        } catch {
            return .failure(ManifestErrors(issues: [ManifestIssue(path: "", line: nil, column: nil, message: "\(error)")]))
        }
    }

    /// A YAML document as JSON (an OpenAPI document, say).
    public static func jsonValue(yaml: String) throws -> JSONValue {
        guard let root = try Yams.compose(yaml: yaml) else { return .null }
        return json(root)
    }

    /// The YAML node as JSON: scalars by their YAML type (bool, number, null, string).
    static func json(_ node: Node) -> JSONValue {
        switch node {
        case .mapping(let mapping):
            var object: [String: JSONValue] = [:]
            for (key, value) in mapping { object[key.string ?? ""] = json(value) }
            return .object(object)
        case .sequence(let sequence):
            return .array(sequence.map(json))
        case .scalar(let scalar):
            if scalar.style == .plain {
                if node.null != nil { return .null }
                if let bool = node.bool { return .bool(bool) }
                if let int = node.int { return .number(Double(int)) }
                if let float = node.float { return .number(float) }
            }
            return .string(scalar.string)
        case .alias:
            return .null
        }
    }
}

/// One problem of a manifest: where (a path such as `integrations[0].write.objects[1].objectName`, and
/// the line and column in the file, from 1) and what is wrong.
public struct ManifestIssue: Codable, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var line: Int?
    public var column: Int?
    public var message: String

    public init(path: String, line: Int?, column: Int?, message: String) {
        self.path = path
        self.line = line
        self.column = column
        self.message = message
    }

    init(yamlError: YamlError) {
        var mark: Mark?
        var problem = "\(yamlError)"
        switch yamlError {
        case .scanner(_, let text, let at, _), .parser(_, let text, let at, _), .composer(_, let text, let at, _):
            mark = at
            problem = text
        case .duplicatedKeysInMapping(let duplicates, let context):
            mark = context.mark
            problem = "duplicated keys: \(duplicates.joined(separator: ", "))"
        default:
            break
        }
        self.init(path: "", line: mark.map { $0.line }, column: mark.map { $0.column }, message: "not valid YAML: \(problem)")
    }

    public var description: String {
        let place = line.map { "\($0):\(column ?? 1)" } ?? "-"
        return path.isEmpty ? "\(place): \(message)" : "\(place): \(path): \(message)"
    }
}

public struct ManifestErrors: Error, Sendable, Equatable {
    public var issues: [ManifestIssue]
}

/// Walks the YAML tree and notes every problem with its place.
struct ManifestChecker {
    var issues: [ManifestIssue] = []

    mutating func note(_ node: Node?, _ path: String, _ message: String) {
        issues.append(ManifestIssue(path: path, line: node?.mark?.line, column: node?.mark?.column, message: message))
    }

    /// The mapping's entries, noting keys that are not among `known`.
    mutating func mapping(_ node: Node, _ path: String, known: [String], what: String) -> [String: Node]? {
        guard case .mapping(let mapping) = node else {
            note(node, path, "\(what) must be a mapping")
            return nil
        }
        var entries: [String: Node] = [:]
        for (key, value) in mapping {
            let name = key.string ?? ""
            if known.contains(name) {
                entries[name] = value
            } else {
                let suggestion = known.first { $0.lowercased() == name.lowercased() }.map { "; did you mean '\($0)'?" } ?? ""
                note(key, join(path, name), "unknown key '\(name)' in \(what)\(suggestion) (known: \(known.joined(separator: ", ")))")
            }
        }
        return entries
    }

    mutating func string(_ node: Node?, _ path: String, required: Bool, parent: Node) -> String? {
        guard let node else {
            if required { note(parent, path, "\(lastName(path)) is required") }
            return nil
        }
        guard case .scalar(let scalar) = node, !scalar.string.isEmpty, node.null == nil else {
            note(node, path, "\(lastName(path)) must be a non-empty string")
            return nil
        }
        return scalar.string
    }

    mutating func bool(_ node: Node?, _ path: String) {
        guard let node else { return }
        if case .scalar = node, node.bool != nil { return }
        note(node, path, "\(lastName(path)) must be true or false")
    }

    mutating func oneOf(_ node: Node?, _ path: String, _ allowed: [String]) {
        guard let node else { return }
        if let text = node.string, allowed.contains(text) { return }
        note(node, path, "\(lastName(path)) must be one of: \(allowed.joined(separator: ", "))")
    }

    mutating func sequence(_ node: Node?, _ path: String) -> [Node]? {
        guard let node else { return nil }
        guard case .sequence(let sequence) = node else {
            note(node, path, "\(lastName(path)) must be a list")
            return nil
        }
        return Array(sequence)
    }

    mutating func check(_ root: Node) {
        guard let top = mapping(root, "", known: ["specVersion", "integrations"], what: "the manifest") else { return }
        if let version = string(top["specVersion"], "specVersion", required: true, parent: root),
           !Manifest.specVersions.contains(version)
        {
            note(top["specVersion"], "specVersion", "specVersion '\(version)' is not supported; use \(Manifest.specVersions.joined(separator: " or "))")
        }
        guard let integrations = top["integrations"] else {
            note(root, "integrations", "integrations is required")
            return
        }
        guard let list = sequence(integrations, "integrations") else { return }
        if list.isEmpty { note(integrations, "integrations", "integrations must list at least one integration") }
        var names: [String: Int] = [:]
        for (index, node) in list.enumerated() {
            let path = "integrations[\(index)]"
            if let name = integration(node, path) {
                if let first = names[name] {
                    note(node, "\(path).name", "integration name '\(name)' is also used by integrations[\(first)]")
                } else {
                    names[name] = index
                }
            }
        }
    }

    /// Checks one integration; its name when it has a valid one.
    mutating func integration(_ node: Node, _ path: String) -> String? {
        guard let fields = mapping(node, path, known: ["name", "provider", "displayName", "module", "read", "write", "proxy",
                                                        "subscribe", "watchSchema"], what: "an integration")
        else { return nil }
        var name = string(fields["name"], "\(path).name", required: true, parent: node)
        if let text = name, text.range(of: #"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$"#, options: .regularExpression) == nil {
            note(fields["name"], "\(path).name", "name '\(text)' may hold only letters, digits, '-' and '_' (at most 100)")
            name = nil
        }
        let providerName = string(fields["provider"], "\(path).provider", required: true, parent: node)
        var provider: Provider?
        if let providerName {
            provider = Provider(rawValue: providerName)
            if provider == nil {
                note(fields["provider"], "\(path).provider", "provider '\(providerName)' is not supported; use one of: "
                    + Provider.allCases.map(\.rawValue).joined(separator: ", "))
            }
        }
        _ = string(fields["displayName"], "\(path).displayName", required: false, parent: node)
        _ = string(fields["module"], "\(path).module", required: false, parent: node)
        var readObjects: Set<String> = []
        if let read = fields["read"], let entries = mapping(read, "\(path).read", known: ["objects"], what: "read") {
            for (index, object) in (sequence(entries["objects"], "\(path).read.objects") ?? []).enumerated() {
                if let name = readObject(object, "\(path).read.objects[\(index)]", provider: provider) {
                    readObjects.insert(name.lowercased())
                }
            }
        }
        if let write = fields["write"], let entries = mapping(write, "\(path).write", known: ["objects"], what: "write") {
            var seen: [String: Int] = [:]
            let objects = sequence(entries["objects"], "\(path).write.objects") ?? []
            if entries["objects"] == nil { note(write, "\(path).write.objects", "objects is required") }
            for (index, object) in objects.enumerated() {
                let objectPath = "\(path).write.objects[\(index)]"
                guard let fields = mapping(object, objectPath, known: ["objectName", "inheritMapping", "valueDefaults"],
                                           what: "a write object")
                else { continue }
                if let objectName = string(fields["objectName"], "\(objectPath).objectName", required: true, parent: object) {
                    checkObjectName(objectName, fields["objectName"], "\(objectPath).objectName", provider: provider)
                    if let first = seen[objectName.lowercased()] {
                        note(fields["objectName"], "\(objectPath).objectName",
                             "object '\(objectName)' is already declared by write.objects[\(first)]")
                    }
                    seen[objectName.lowercased()] = index
                    if fields["inheritMapping"]?.bool == true, !readObjects.contains(objectName.lowercased()) {
                        note(fields["inheritMapping"], "\(objectPath).inheritMapping",
                             "inheritMapping needs a read object '\(objectName)' whose field mappings it inherits")
                    }
                }
                bool(fields["inheritMapping"], "\(objectPath).inheritMapping")
                if let defaults = fields["valueDefaults"],
                   let entries = mapping(defaults, "\(objectPath).valueDefaults", known: ["allowAnyFields"], what: "valueDefaults")
                {
                    bool(entries["allowAnyFields"], "\(objectPath).valueDefaults.allowAnyFields")
                }
            }
        }
        if let proxy = fields["proxy"], let entries = mapping(proxy, "\(path).proxy", known: ["enabled", "useModule"], what: "proxy") {
            bool(entries["enabled"], "\(path).proxy.enabled")
            bool(entries["useModule"], "\(path).proxy.useModule")
        }
        for key in ["subscribe", "watchSchema"] {
            if let node = fields[key], case .mapping = node {} else if let node = fields[key] {
                note(node, "\(path).\(key)", "\(key) must be a mapping")
            }
        }
        if fields["read"] == nil && fields["write"] == nil && fields["proxy"] == nil {
            note(node, path, "an integration needs at least one of read, write or proxy")
        }
        return name
    }

    mutating func readObject(_ node: Node, _ path: String, provider: Provider?) -> String? {
        guard let fields = mapping(node, path, known: [
            "objectName", "destination", "schedule", "mapToName", "mapToDisplayName", "requiredFields", "optionalFields",
            "optionalFieldsAuto", "backfill", "delivery", "enabled",
        ], what: "a read object") else { return nil }
        let name = string(fields["objectName"], "\(path).objectName", required: true, parent: node)
        if let name { checkObjectName(name, fields["objectName"], "\(path).objectName", provider: provider) }
        _ = string(fields["destination"], "\(path).destination", required: true, parent: node)
        _ = string(fields["schedule"], "\(path).schedule", required: true, parent: node)
        oneOf(fields["optionalFieldsAuto"], "\(path).optionalFieldsAuto", ["all"])
        oneOf(fields["enabled"], "\(path).enabled", ["always"])
        for list in ["requiredFields", "optionalFields"] {
            for (index, field) in (sequence(fields[list], "\(path).\(list)") ?? []).enumerated() {
                let fieldPath = "\(path).\(list)[\(index)]"
                guard let entries = mapping(field, fieldPath, known: ["fieldName", "mapToName", "mapToDisplayName", "default", "prompt"],
                                            what: "a field")
                else { continue }
                for key in entries.keys.sorted() { _ = string(entries[key], "\(fieldPath).\(key)", required: false, parent: field) }
                if entries["fieldName"] == nil && entries["mapToName"] == nil {
                    note(field, fieldPath, "a field needs fieldName (a provider field) or mapToName (a name each customer maps)")
                }
            }
        }
        return name
    }

    /// Object names the provider can have (its profile says which: Salesforce API names ending in `__c`
    /// for custom ones, HubSpot object types, custom objects `p_…` and type ids `2-1234`).
    mutating func checkObjectName(_ name: String, _ node: Node?, _ path: String, provider: Provider?) {
        if let problem = provider?.profile.objectNameProblem(name) { note(node, path, problem) }
    }

    func join(_ path: String, _ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }

    func lastName(_ path: String) -> String {
        String(path.split(separator: ".").last ?? Substring(path))
    }
}
