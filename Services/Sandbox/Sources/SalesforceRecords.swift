import Shared

/// One sObject row operation, whichever API it came through (REST, composite collections, Bulk API 2.0).
enum SalesforceOperation {
    case create(object: String, fields: [String: JSONValue])
    case update(object: String?, id: String, fields: [String: JSONValue])
    /// Upsert matching `field` (an external ID field, or `Id`) against `value`.
    case upsert(object: String, field: String, value: String, fields: [String: JSONValue])
    case delete(object: String?, id: String)
}

/// What an operation came to: the record's id and whether it was created, or the error and its status.
struct SalesforceResult {
    var status: Int
    var id: String?
    var created: Bool?
    var error: SalesforceFailure?
    /// Upsert matched several records: their ids (HTTP 300).
    var matches: [String] = []

    static func failed(_ status: Int, _ code: String, _ message: String, fields: [String] = []) -> SalesforceResult {
        SalesforceResult(status: status, error: SalesforceFailure(errorCode: code, message: message, fields: fields))
    }
}

/// A refused lookup, carrying the answer to give.
struct SalesforceRefusal: Error {
    var result: SalesforceResult
}

struct SalesforceFailure: Error, Sendable {
    var errorCode: String
    var message: String
    var fields: [String]
}

extension SandboxState {
    /// An object as the org of the call being applied (`salesforceOrg`) has it.
    func salesforceObject(_ name: String) -> SandboxSchema.SalesforceObject? {
        guard let declared = orgs["salesforce/\(salesforceOrg)"]?.salesforceObjects else { return SandboxSchema.salesforceObject(name) }
        return SandboxSchema.salesforceObject(name, declared: declared)
    }

    /// Validates and applies one operation, as Salesforce would, with the schema of `salesforceOrg`.
    mutating func apply(_ operation: SalesforceOperation) -> SalesforceResult {
        switch operation {
        case .create(let object, let fields):
            guard let definition = salesforceObject(object) else { return Self.noSuchObject(object) }
            if fields["Id"] != nil || fields["id"] != nil {
                return .failed(400, "INVALID_FIELD", "Unable to create/update fields: Id. Please check the security settings of this field and verify that it is read/write for your profile or permission set.", fields: ["Id"])
            }
            if let failure = Self.check(fields, on: object, definition) { return failure }
            let missing = definition.required.filter { fields[$0] == nil || fields[$0] == .null || fields[$0] == "" }
            if !missing.isEmpty {
                return .failed(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [\(missing.joined(separator: ", "))]",
                               fields: missing)
            }
            if let duplicate = duplicate(fields, object: object, definition: definition, except: nil) { return duplicate }
            let id = newSalesforceId(prefix: definition.keyPrefix)
            store(id, SalesforceRecord(object: object, fields: fields))
            return SalesforceResult(status: 201, id: id, created: true)
        case .update(let object, let id, let fields):
            var record: SalesforceRecord
            switch liveRecord(id, of: object) {
            case .success(let found): record = found
            case .failure(let failure): return failure.result
            }
            guard let definition = salesforceObject(record.object) else { return Self.noSuchObject(record.object) }
            var changes = fields
            changes["Id"] = nil
            changes["id"] = nil
            if let failure = Self.check(changes, on: record.object, definition) { return failure }
            if let duplicate = duplicate(changes, object: record.object, definition: definition, except: id) { return duplicate }
            for (name, value) in changes { record.fields[name] = value }
            store(id, record)
            return SalesforceResult(status: 204, id: id, created: false)
        case .upsert(let object, let field, let value, let fields):
            guard let definition = salesforceObject(object) else { return Self.noSuchObject(object) }
            if field == "Id" {
                let result = apply(.update(object: object, id: value, fields: fields))
                return result.error == nil ? SalesforceResult(status: 200, id: value, created: false) : result
            }
            guard definition.externalIds.contains(field) || (!definition.strict && object.hasSuffix("__c") && field.hasSuffix("__c")) else {
                return .failed(404, "NOT_FOUND", "Provided external ID field does not exist or is not accessible: \(field)")
            }
            let matches = records(of: object, where: field, is: value)
            if matches.count > 1 { return SalesforceResult(status: 300, matches: matches) }
            var given = fields
            given[field] = nil
            if let id = matches.first {
                let result = apply(.update(object: object, id: id, fields: given))
                return result.error == nil ? SalesforceResult(status: 200, id: id, created: false) : result
            }
            given[field] = .string(value)
            return apply(.create(object: object, fields: given))
        case .delete(let object, let id):
            switch liveRecord(id, of: object) {
            case .success(var record):
                record.deleted = true
                store(id, record)
                return SalesforceResult(status: 204, id: id, created: false)
            case .failure(let failure):
                return failure.result
            }
        }
    }

    /// A record that exists and is not deleted, of `object` when given; otherwise the error Salesforce
    /// gives for that id (MALFORMED_ID, NOT_FOUND, ENTITY_IS_DELETED).
    func liveRecord(_ id: String, of object: String?) -> Result<SalesforceRecord, SalesforceRefusal> {
        guard id.count == 15 || id.count == 18 else {
            return .failure(SalesforceRefusal(result: .failed(
                400, "MALFORMED_ID", "\(object ?? "Record") ID: id value of incorrect type: \(id)", fields: ["Id"])))
        }
        guard let record = salesforce[id], object == nil || record.object == object else {
            return .failure(SalesforceRefusal(result: .failed(404, "NOT_FOUND", "The requested resource does not exist")))
        }
        if record.deleted { return .failure(SalesforceRefusal(result: .failed(404, "ENTITY_IS_DELETED", "entity is deleted"))) }
        return .success(record)
    }

    /// Live records of an object whose field equals a value (external IDs compare case-insensitively).
    func records(of object: String, where field: String, is value: String) -> [String] {
        if let found = indexed(object, field, value, provider: "salesforce") { return found }
        return salesforce.filter { _, record in
            !record.deleted && record.object == object && record.fields[field]?.scalarText?.lowercased() == value.lowercased()
        }.keys.sorted()
    }

    private func duplicate(
        _ fields: [String: JSONValue], object: String, definition: SandboxSchema.SalesforceObject, except: String?
    ) -> SalesforceResult? {
        for field in definition.externalIds.sorted() {
            guard let value = fields[field]?.scalarText, !value.isEmpty,
                let other = records(of: object, where: field, is: value).first(where: { $0 != except })
            else { continue }
            return .failed(400, "DUPLICATE_VALUE", "duplicate value found: \(field) duplicates value on record with id: \(other)")
        }
        return nil
    }

    private static func check(_ fields: [String: JSONValue], on object: String, _ definition: SandboxSchema.SalesforceObject)
        -> SalesforceResult?
    {
        guard let unknown = fields.keys.sorted().first(where: { !SandboxSchema.salesforceFieldExists($0, on: definition) })
        else { return nil }
        return .failed(400, "INVALID_FIELD", "No such column '\(unknown)' on sobject of type \(object)", fields: [unknown])
    }

    private static func noSuchObject(_ object: String) -> SalesforceResult {
        .failed(404, "NOT_FOUND", "The requested resource does not exist")
    }
}
