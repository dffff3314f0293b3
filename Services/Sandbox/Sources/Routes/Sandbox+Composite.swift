import Hummingbird
import Shared

/// Salesforce composite sObject collections: up to 200 records of one call, `POST|PATCH|DELETE
/// /composite/sobjects` and upsert `PATCH /composite/sobjects/{SObject}/{ExternalIdField}`. A well-formed
/// call is always 200 with one result per record, in request order; `allOrNone` rolls every record
/// back when one fails.
extension Sandbox {
    struct CollectionResult: Encodable {
        var id: String?
        var success: Bool
        var errors: [CollectionError]
        var created: Bool?
    }

    struct CollectionError: Encodable {
        var statusCode: String
        var message: String
        var fields: [String]
    }

    static let collectionLimit = 200

    func addCompositeRoutes(to router: Router<BasicRequestContext>) {
        let path = "services/data/:version/composite/sobjects"
        router.post(RouterPath(path)) { request, context in
            try await self.collection(request, context, method: "POST") { record, _ in
                guard let type = record["attributes"]?["type"]?.stringValue else { return .failure(Self.noType) }
                return .success(.create(object: type, fields: Self.fields(of: record)))
            }
        }
        router.patch(RouterPath(path)) { request, context in
            try await self.collection(request, context, method: "PATCH") { record, _ in
                guard let id = (record["id"] ?? record["Id"])?.stringValue else {
                    return .failure(SalesforceFailure(errorCode: "MISSING_ARGUMENT", message: "Id not specified in an update call", fields: []))
                }
                return .success(.update(object: record["attributes"]?["type"]?.stringValue, id: id, fields: Self.fields(of: record)))
            }
        }
        router.patch(RouterPath("\(path)/:object/:field")) { request, context in
            let object = context.parameters.get("object") ?? ""
            let field = context.parameters.get("field") ?? ""
            return try await self.collection(request, context, method: "PATCH") { record, _ in
                guard record["attributes"]?["type"]?.stringValue == object else { return .failure(Self.noType) }
                guard let value = record[field]?.scalarText, !value.isEmpty else {
                    return .failure(SalesforceFailure(
                        errorCode: "MISSING_ARGUMENT", message: "\(field) not specified", fields: [field]))
                }
                return .success(.upsert(object: object, field: field, value: value, fields: Self.fields(of: record)))
            }
        }
        router.delete(RouterPath(path)) { request, context in
            try await self.collection(request, context, method: "DELETE") { record, _ in
                .success(.delete(object: nil, id: record.stringValue ?? ""))
            }
        }
    }

    private static let noType = SalesforceFailure(
        errorCode: "INVALID_TYPE", message: "Must send a concrete entity type.", fields: [])

    private static func fields(of record: JSONValue) -> [String: JSONValue] {
        var fields = record.objectValue ?? [:]
        fields["attributes"] = nil
        return fields
    }

    /// Reads the records (or, for DELETE, the `ids` query), turns each into an operation, and applies them
    /// all under one lock, rolling back when `allOrNone` and one failed.
    private func collection(
        _ request: Request, _ context: BasicRequestContext, method: String,
        operation: @escaping (JSONValue, Int) -> Result<SalesforceOperation, SalesforceFailure>
    ) async throws -> Response {
        var request = request
        let body = method == "DELETE" ? nil : await jsonBody(&request)
        let records: [JSONValue]
        let allOrNone: Bool
        if method == "DELETE" {
            let ids = request.uri.queryParameters.get("ids") ?? ""
            records = ids.split(separator: ",").map { .string(String($0)) }
            allOrNone = request.uri.queryParameters.get("allOrNone") == "true"
        } else {
            if case .array(let given)? = body?["records"] { records = given } else { records = [] }
            allOrNone = body?["allOrNone"] == true
        }
        return try await salesforce(request, context, object: "composite", recordId: nil, body: body ?? .null, method: method) { state in
            guard !records.isEmpty else {
                return (400, [SalesforceError(message: "No records to process", errorCode: "INVALID_FIELD")], nil)
            }
            guard records.count <= Self.collectionLimit else {
                return (400, [SalesforceError(
                    message: "record limit reached. cannot submit more than \(Self.collectionLimit) records into this call",
                    errorCode: "EXCEEDED_ID_LIMIT")], nil)
            }
            let results = state.rollingBack { state -> ([SalesforceResult], rollback: Bool) in
                var results: [SalesforceResult] = []
                for (index, record) in records.enumerated() {
                    switch operation(record, index) {
                    case .success(let operation): results.append(state.apply(operation))
                    case .failure(let failure): results.append(SalesforceResult(status: 400, error: failure))
                    }
                }
                return (results, allOrNone && results.contains { $0.error != nil || $0.status == 300 })
            }
            let failed = results.contains { $0.error != nil || $0.status == 300 }
            let answer = results.map { result -> CollectionResult in
                if let error = result.error {
                    return CollectionResult(id: nil, success: false, errors: [
                        CollectionError(statusCode: error.errorCode, message: error.message, fields: error.fields),
                    ])
                }
                if result.status == 300 {
                    return CollectionResult(id: nil, success: false, errors: [CollectionError(
                        statusCode: "DUPLICATE_EXTERNAL_ID",
                        message: "The external ID value matches several records: \(result.matches.joined(separator: ", "))",
                        fields: [])])
                }
                if allOrNone && failed {
                    return CollectionResult(id: nil, success: false, errors: [CollectionError(
                        statusCode: "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                        message: "Record rolled back because not all records were valid and the request was using AllOrNone header",
                        fields: [])])
                }
                return CollectionResult(id: result.id, success: true, errors: [],
                                        created: method == "PATCH" && result.status != 204 ? result.created : nil)
            }
            return (200, answer, nil)
        }
    }
}
