import Connectors
import CSV
import Foundation
import HTTPClient
import Hummingbird
import Metrics
import ProviderAccess
import Shared

/// Bulk CSV writes: `PUT /v1/projects/{p}/integrations/{i}/objects/{object}:async` (and `POST …/objects/{object}`
/// with `mode: bulk`), `{groupRef, type: upsert|delete, primaryKey, recordsCSV | recordsURL}`. Everything
/// that can be checked is checked before the write is accepted: the CSV's header names the provider's
/// fields and holds the primary key; a `recordsCSV` is read whole (LF line endings, quoting, row widths);
/// a `recordsURL` must be allowed and answer with a CSV whose header passes. Answers `{operationId}`.
extension WritesController {
    /// The most a `recordsCSV` may hold.
    static let maxRecordsCSVBytes = 10 << 20
    /// The most of a `recordsURL` read to check its header.
    static let recordsURLHeadBytes = 256 << 10
    /// A bulk request's body: a 10 MiB CSV as a JSON string, with room for its escapes.
    static let maxBulkBodyBytes = 3 * maxRecordsCSVBytes

    func bulkWrite(_ request: Request, _ context: APIContext) async throws -> Response {
        let object = objectPath(context)
        guard object.hasSuffix(":async") else {
            throw Problem.notFound("PUT is for bulk writes, at …/objects/{objectName}:async", name: "objectName")
        }
        let body = try await jsonObject(request, limit: Self.maxBulkBodyBytes)
        return try await bulkWrite(body, objectParameter: String(object.dropLast(":async".count)), defaultType: .upsert,
                                   request, context)
    }


    func bulkWrite(
        _ body: [String: JSONValue], objectParameter: String, defaultType: WriteType?, _ request: Request,
        _ context: APIContext
    ) async throws -> Response {
        let project = try context.authenticatedProject
        let integration = try await control.integration(context.path("integration"), project: project)
        guard let objectName = integration.objects.first(where: { $0.lowercased() == objectParameter.lowercased() }) else {
            throw Problem.notFound("object '\(objectParameter)' is not written by integration \(integration.name)", name: "objectName")
        }
        let input = try BulkInput.parse(body, defaultType: defaultType, provider: integration.provider)
        let installationId = try await control.installationId(integration: integration, groupRef: input.groupRef)
        guard let installation = try await providers.installations.context(installationId) else {
            throw Problem.notFound("the installation was removed", name: "groupRef")
        }

        // The CSV's header (and, for recordsCSV, all of it) is read before anything is accepted.
        var header: [String]
        let csvBytes: [UInt8]?
        if let csv = input.recordsCSV {
            let bytes = Array(csv.utf8)
            guard bytes.count <= Self.maxRecordsCSVBytes else {
                throw Problem(title: "Content Too Large", status: 413, detail:
                    "recordsCSV is \(bytes.count) bytes; it may hold at most 10 MiB (\(Self.maxRecordsCSVBytes) bytes); "
                    + "send a larger file as recordsURL")
            }
            var check = CSVTableCheck(primaryKey: input.primaryKey)
            do {
                try check.feed(bytes)
                try check.finish()
            } catch let error as CSVError {
                throw Problem.badRequest("recordsCSV: \(error.message)", name: "recordsCSV")
            }
            header = check.header
            csvBytes = bytes
        } else {
            header = try await urlHeader(input.recordsURL ?? "", primaryKey: input.primaryKey)
            csvBytes = nil
        }
        let providerObject = integration.provider.profile.objectName(for: objectName)
        header = try await checkColumns(header, of: providerObject, installation: installation, provider: integration.provider)

        let message = WriteRequestMessage(
            operationId: OperationIdentity.newOperationId(), projectId: project.id, integrationId: integration.id,
            installationId: installationId, groupRef: input.groupRef, provider: integration.provider, objectName: objectName,
            type: input.type, mode: .bulk, record: [:], recordId: nil, associations: nil, replyTo: nil, acceptedAt: Timestamp.now(),
            retryDeadlineHours: input.retryDeadlineHours,
            bulk: BulkWrite(primaryKey: header.first { $0.lowercased() == input.primaryKey.lowercased() } ?? input.primaryKey,
                            header: header, recordsURL: input.recordsURL, bytes: csvBytes?.count))
        // One fingerprint for both ways of asking (PUT …:async and POST with mode bulk).
        var fingerprinted = body
        fingerprinted["mode"] = nil
        fingerprinted["type"] = .string(input.type.rawValue)
        let claim = submitter.idempotencyClaim(request, project: project.id, route: "bulk:\(integration.id)/\(objectName)", body: fingerprinted)
        switch try await submitter.submit(message, claim: claim, wait: false, upload: csvBytes) {
        case .replayed(_, let status, let body):
            return jsonResponse(status, body)
        case .accepted(let operationId, _):
            logger.info("bulk write accepted", metadata: [
                "operation": "\(operationId)", "source": "\(input.recordsURL == nil ? "recordsCSV" : "recordsURL")",
                "columns": "\(header.count)",
            ])
            let answer = try JSONCoding.encode(["operationId": operationId])
            await submitter.remember(claim, status: 200, body: answer)
            return jsonResponse(200, answer)
        }
    }

    /// The header of the CSV at a `recordsURL`, read from its first bytes: the URL must be allowed and
    /// answer 200 with a CSV whose first line names distinct columns, among them the primary key.
    private func urlHeader(_ url: String, primaryKey: String) async throws -> [String] {
        var download = configuration.recordsURL
        download.timeout = min(download.timeout, 30)
        let head: [UInt8]
        do {
            head = try await download.head(url, limit: Self.recordsURLHeadBytes)
        } catch {
            throw Problem.badRequest(error.message, name: "recordsURL")
        }
        var reader = CSVReader()
        var header: [String]?
        var problem: CSVError?
        do {
            try reader.feed(head) { record, _ in if header == nil { header = record } }
            if header == nil && head.count < Self.recordsURLHeadBytes { try reader.finish { record, _ in header = header ?? record } }
        } catch {
            // A problem past the header is found when the rows are read, and fails those rows.
            problem = error as? CSVError
        }
        guard let header, !header.isEmpty else {
            throw Problem.badRequest(
                "recordsURL: " + (problem?.message ?? "the CSV has no header line in its first \(Self.recordsURLHeadBytes) bytes"),
                name: "recordsURL")
        }
        do {
            try CSVTableCheck.checkHeader(header, primaryKey: primaryKey)
        } catch {
            throw Problem.badRequest("recordsURL: \(error.message)", name: "recordsURL")
        }
        return header
    }

    /// The header with each column named as the provider names the field (Salesforce field names are
    /// case-insensitive); a column that is no field of the object is a 400 naming it.
    private func checkColumns(_ header: [String], of object: String, installation: InstallationContext, provider: Provider)
        async throws -> [String]
    {
        let fields = try await providers.objectFields(object, installation: installation, provider: provider)
        // The record id is a column of every object (a delete's primary key).
        let names = Set((fields.objectValue ?? [:]).keys.filter { $0 != "__displayName" })
            .union([provider.profile.recordIdField])
        let folded = Dictionary(names.map { ($0.lowercased(), $0) }, uniquingKeysWith: { first, _ in first })
        var named: [String] = []
        var unknown: [String] = []
        for column in header {
            if names.contains(column) {
                named.append(column)
            } else if provider.profile.fieldNamesIgnoreCase, let name = folded[column.lowercased()] {
                named.append(name)
            } else {
                unknown.append(column)
            }
        }
        guard unknown.isEmpty else {
            throw Problem.badRequest(
                "the CSV's header names \(unknown.count == 1 ? "a column" : "columns") that \(provider.rawValue) \(object) has no field for: "
                    + unknown.joined(separator: ", ") + (provider.profile.customFieldHint.map { " (\($0))" } ?? ""),
                name: "header")
        }
        return named
    }
}

/// A bulk write request's fields, checked.
struct BulkInput {
    var groupRef: String
    var type: WriteType
    var primaryKey: String
    var recordsCSV: String?
    var recordsURL: String?
    var retryDeadlineHours: Int?

    static func parse(_ body: [String: JSONValue], defaultType: WriteType?, provider: Provider) throws(Problem) -> BulkInput {
        guard let groupRef = body["groupRef"]?.stringValue, !groupRef.isEmpty else {
            throw .badRequest("groupRef is required: the customer whose account to write to", name: "groupRef")
        }
        let type: WriteType
        switch body["type"] {
        case nil, .null:
            guard let defaultType else { throw .badRequest("type is required for a bulk write: upsert or delete", name: "type") }
            type = defaultType
        case .string(let text):
            guard let known = WriteType(rawValue: text), known == .upsert || known == .delete else {
                throw .badRequest("a bulk write's type is upsert or delete, not '\(text)'", name: "type")
            }
            type = known
        default:
            throw .badRequest("type must be a string: upsert or delete", name: "type")
        }
        guard let primaryKey = body["primaryKey"]?.stringValue, !primaryKey.isEmpty else {
            throw .badRequest("primaryKey is required: the column that identifies each row", name: "primaryKey")
        }
        if type == .delete {
            let idField = provider.profile.recordIdField
            guard primaryKey.lowercased() == idField.lowercased() else {
                throw .badRequest("a bulk delete identifies rows by the record id: primaryKey must be \(idField)", name: "primaryKey")
            }
        }
        let hours = try WriteInput.retryPolicyHours(body)
        let csv = body["recordsCSV"]
        let url = body["recordsURL"]
        switch (csv, url) {
        case (.string(let text)?, nil), (.string(let text)?, .null?):
            guard !text.isEmpty else { throw .badRequest("recordsCSV is empty", name: "recordsCSV") }
            return BulkInput(groupRef: groupRef, type: type, primaryKey: primaryKey, recordsCSV: text, recordsURL: nil,
                             retryDeadlineHours: hours)
        case (nil, .string(let text)?), (.null?, .string(let text)?):
            return BulkInput(groupRef: groupRef, type: type, primaryKey: primaryKey, recordsCSV: nil, recordsURL: text,
                             retryDeadlineHours: hours)
        case (nil, nil), (.null?, .null?), (nil, .null?), (.null?, nil):
            throw .badRequest("a bulk write needs its records: recordsCSV (a CSV of at most 10 MiB) or recordsURL", name: "recordsCSV")
        case (.string?, .string?):
            throw .badRequest("send either recordsCSV or recordsURL, not both", name: "recordsURL")
        default:
            throw .badRequest("recordsCSV and recordsURL must be strings", name: csv.flatMap(\.stringValue) == nil ? "recordsCSV" : "recordsURL")
        }
    }
}

/// Bytes as lower-case hex, for a bytea literal.
func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}
