import Shared

/// Everything the simulated providers hold, in memory.
struct SandboxState: Sendable {
    struct SalesforceRecord: Sendable {
        var object: String
        var fields: [String: JSONValue]
        var deleted = false
    }

    struct HubSpotObject: Sendable {
        var type: String
        var properties: [String: JSONValue]
        var createdAt: String
        var updatedAt: String
        var archived = false
    }

    /// Salesforce records by id; written through `store(_:_:)` so the unique index stays true.
    private(set) var salesforce: [String: SalesforceRecord] = [:]
    /// HubSpot objects by type, then id; written through `store(_:_:)`.
    private(set) var hubspot: [String: [String: HubSpotObject]] = [:]
    /// Live records and objects by the value of a field that may be unique (Salesforce `__c` fields, where
    /// external IDs live; HubSpot's unique properties), so upserts and duplicate checks do not scan.
    private var uniqueIndex: [UniqueKey: Set<String>] = [:]

    struct UniqueKey: Hashable, Sendable {
        var scope: String
        var field: String
        /// Compared case-insensitively, as both providers do.
        var value: String

        init(_ scope: String, _ field: String, _ value: String) {
            self.scope = scope
            self.field = field
            self.value = value.lowercased()
        }
    }
    /// Pipedrive's items.
    var pipedrive = PipedriveStore()
    var nextSalesforceNumber = 1
    var nextHubSpotNumber = 1001
    /// Every write call received, in arrival order.
    var requests: [LoggedRequest] = []
    var latencyMilliseconds = 0
    /// Access tokens by value: which provider and org, and when they stop working (nil: until expired by
    /// a test).
    var accessTokens: [String: AccessToken] = [:]
    /// The org of each refresh token; tokens it issues belong to that org.
    var refreshTokenOrgs: [String: String] = [:]
    /// Refresh tokens that no longer work.
    var revokedRefreshTokens: Set<String> = []
    /// Codes the consent pages gave out, not yet exchanged: code → (provider, redirect URI).
    var authorizationCodes: [String: (provider: String, redirectURI: String)] = [:]
    /// Refresh tokens issued for authorization codes: token → provider.
    var issuedRefreshTokens: [String: String] = [:]
    var issuedTokens = 0
    /// Orgs by `provider/name`, made on first use with the provider's default limits.
    var orgs: [String: Org] = [:]
    /// HubSpot associations: `type/id` → `type/id` → association type ids.
    var hubspotAssociations: [String: [String: Set<Int>]] = [:]
    /// The org whose Salesforce call is being applied, set under the lock before applying it: its
    /// declared schema (if any) is the one that validates.
    var salesforceOrg = "default"
    /// Bulk API 2.0 ingest jobs by id.
    var bulkJobs: [String: BulkJob] = [:]
    /// Files served at `/_sandbox/files/{name}` (a bulk write's recordsURL in tests).
    var files: [String: [UInt8]] = [:]
    /// Faults the next write calls meet, in order, by `provider` (any org) or `provider/org`.
    var faults: [String: [Fault]] = [:]

    struct AccessToken: Sendable {
        var provider: String
        var org: String
        var expires: Double?
    }

    /// What a call that may be rolled back (an all-or-none batch) changed: each record and object as it
    /// was before (nil: absent), and the association lists it touched. Nil while no such call runs.
    struct UndoLog: Sendable {
        var salesforce: [String: SalesforceRecord?] = [:]
        var hubspot: [String: HubSpotObject?] = [:]
        var associations: [String: [String: Set<Int>]?] = [:]
    }

    private var undo: UndoLog?

    /// Applies `body`, and undoes what it changed when it answers true (rolled back): the cost is what
    /// the call touched, not the size of the store.
    mutating func rollingBack<T>(_ body: (inout SandboxState) -> (T, rollback: Bool)) -> T {
        undo = UndoLog()
        let (answer, rollback) = body(&self)
        let log = undo ?? UndoLog()
        undo = nil
        if rollback {
            for (id, record) in log.salesforce {
                if let record { store(id, record) } else { removeSalesforce(id) }
            }
            for (key, object) in log.hubspot {
                let (type, id) = Self.split(key)
                if let object { store(id, object) } else { removeHubSpot(type: type, id) }
            }
            for (key, links) in log.associations { hubspotAssociations[key] = links }
        }
        return answer
    }

    private static func split(_ key: String) -> (String, String) {
        let parts = key.split(separator: "/", maxSplits: 1)
        return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
    }

    /// Stores a Salesforce record, keeping the index of its `__c` values.
    mutating func store(_ id: String, _ record: SalesforceRecord) {
        if undo != nil, undo?.salesforce.index(forKey: id) == nil { undo?.salesforce[id] = .some(salesforce[id]) }
        if let old = salesforce[id], !old.deleted { index(id, old.fields, scope: old.object, fields: Self.customFields, insert: false) }
        salesforce[id] = record
        if !record.deleted { index(id, record.fields, scope: record.object, fields: Self.customFields, insert: true) }
    }

    private mutating func removeSalesforce(_ id: String) {
        if let old = salesforce[id], !old.deleted { index(id, old.fields, scope: old.object, fields: Self.customFields, insert: false) }
        salesforce[id] = nil
    }

    /// Stores a HubSpot object, keeping the index of its unique properties.
    mutating func store(_ id: String, _ object: HubSpotObject) {
        let key = "\(object.type)/\(id)"
        if undo != nil, undo?.hubspot.index(forKey: key) == nil { undo?.hubspot[key] = .some(hubspot[object.type]?[id]) }
        let unique = { (name: String) in SandboxSchema.hubspotUnique[object.type]?.contains(name) == true }
        if let old = hubspot[object.type]?[id], !old.archived { index(id, old.properties, scope: object.type, fields: unique, insert: false) }
        hubspot[object.type, default: [:]][id] = object
        if !object.archived { index(id, object.properties, scope: object.type, fields: unique, insert: true) }
    }

    private mutating func removeHubSpot(type: String, _ id: String) {
        let unique = { (name: String) in SandboxSchema.hubspotUnique[type]?.contains(name) == true }
        if let old = hubspot[type]?[id], !old.archived { index(id, old.properties, scope: type, fields: unique, insert: false) }
        hubspot[type]?[id] = nil
    }

    /// Replaces an object's association list, remembering it for a roll-back.
    mutating func setAssociations(_ key: String, _ links: [String: Set<Int>]) {
        if undo != nil, undo?.associations.index(forKey: key) == nil { undo?.associations[key] = .some(hubspotAssociations[key]) }
        hubspotAssociations[key] = links
    }

    /// The live records of `scope` whose `field` has `value`, when that field is indexed; nil when it is not.
    func indexed(_ scope: String, _ field: String, _ value: String, provider: String) -> [String]? {
        let isIndexed = provider == "salesforce" ? Self.customFields(field) : SandboxSchema.hubspotUnique[scope]?.contains(field) == true
        guard isIndexed else { return nil }
        return uniqueIndex[UniqueKey(scope, field, value)].map { $0.sorted() } ?? []
    }

    private static func customFields(_ name: String) -> Bool { name.hasSuffix("__c") }

    private mutating func index(_ id: String, _ fields: [String: JSONValue], scope: String, fields included: (String) -> Bool,
                                insert: Bool)
    {
        for (name, value) in fields where included(name) {
            guard let text = value.scalarText, !text.isEmpty else { continue }
            let key = UniqueKey(scope, name, text)
            if insert {
                uniqueIndex[key, default: []].insert(id)
            } else {
                uniqueIndex[key]?.remove(id)
                if uniqueIndex[key]?.isEmpty == true { uniqueIndex[key] = nil }
            }
        }
    }

    mutating func newSalesforceId(prefix: String) -> String {
        defer { nextSalesforceNumber += 1 }
        let digits = String(nextSalesforceNumber, radix: 36, uppercase: true)
        let body = String(repeating: "0", count: max(0, 12 - digits.count)) + digits
        return prefix + body + "AAA"
    }

    mutating func newHubSpotId() -> String {
        defer { nextHubSpotNumber += 1 }
        return String(nextHubSpotNumber)
    }
}

/// A failure a test asks a provider to show on one of its next write calls.
struct Fault: Codable, Sendable {
    /// `error`: answer `status` (default 500) with the provider's error body, applying nothing;
    /// `delay`: wait `delayMilliseconds`, then handle the call (a client that gave up may find it applied);
    /// `lock`: Salesforce's UNABLE_TO_LOCK_ROW; `drop`: close the connection without an answer, applying
    /// nothing.
    var kind: String
    var status: Int?
    var delayMilliseconds: Int?
}

/// One write call as the sandbox received it, readable by tests at `GET /_sandbox/requests`.
struct LoggedRequest: Codable, Sendable {
    var sequence: Int
    var provider: String
    var method: String
    var path: String
    var object: String
    var recordId: String?
    var status: Int
    var body: JSONValue?
    var receivedAt: String
}
