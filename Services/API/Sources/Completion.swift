import Shared

/// How a write ended, as a synchronous answer reports it.
struct Completion: Sendable, Equatable {
    var success: Bool
    var recordId: String?
    var data: [String: JSONValue]?
    var error: WriteError?
    var providerStatus: Int?
    /// A batch write's result per record.
    var results: [BatchItemResult]?

    init(_ result: WriteResultMessage) {
        providerStatus = result.providerStatus
        results = result.results
        success = result.success
        recordId = result.recordId
        data = result.data
        error = result.error
    }

    init(
        success: Bool, recordId: String?, data: [String: JSONValue]?, error: WriteError?, providerStatus: Int? = nil,
        results: [BatchItemResult]? = nil
    ) {
        self.providerStatus = providerStatus
        self.results = results
        self.success = success
        self.recordId = recordId
        self.data = data
        self.error = error
    }

    /// The Ampersand write answer: 200 with the result, or 422 with the provider's message.
    func answer(operationId: String) -> (status: Int, body: [UInt8]) {
        var body: [String: JSONValue] = ["operationId": .string(operationId)]
        if let results {
            // A batch: counts, each record's result in request order, and an error per failed record.
            body["successCount"] = .number(Double(results.filter(\.success).count))
            body["failureCount"] = .number(Double(results.filter { !$0.success }.count))
            body["results"] = .array(results.map { item in
                var entry: [String: JSONValue] = ["success": .bool(item.success)]
                if item.success, let recordId = item.recordId { entry["recordId"] = .string(recordId) }
                if item.success, let data = item.data { entry["data"] = .object(data) }
                return .object(entry)
            })
            let errors: [JSONValue] = results.enumerated().compactMap { index, item in
                guard !item.success else { return nil }
                var entry: [String: JSONValue] = [
                    "message": .string("batch[\(index)]: \(item.error?.message ?? "the record was not written")"), "index": .number(Double(index)),
                ]
                if let code = item.error?.code { entry["code"] = .string(code) }
                return .object(entry)
            }
            if !errors.isEmpty { body["errors"] = .array(errors) }
            return (errors.isEmpty ? 200 : 422, (try? JSONCoding.encode(body)) ?? [])
        }
        if success {
            var result: [String: JSONValue] = ["success": true]
            if let recordId { result["recordId"] = .string(recordId) }
            if let data { result["data"] = .object(data) }
            body["result"] = .object(result)
        } else {
            body["result"] = ["success": false]
            var entry: [String: JSONValue] = ["message": .string(error?.message ?? "the write failed")]
            if let existing = error?.existingRecordId { entry["existingRecordId"] = .string(existing) }
            body["errors"] = .array([.object(entry)])
            if let raw = error?.raw { body["rawResponse"] = .string(raw) }
        }
        return (success ? 200 : 422, (try? JSONCoding.encode(body)) ?? [])
    }
}
