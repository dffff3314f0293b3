import Shared

/// How a write ended, as a synchronous answer reports it.
struct Completion: Sendable, Equatable {
    var success: Bool
    var recordId: String?
    var data: [String: JSONValue]?
    var error: WriteError?
    var providerStatus: Int?

    init(_ result: WriteResultMessage) {
        providerStatus = result.providerStatus
        success = result.success
        recordId = result.recordId
        data = result.data
        error = result.error
    }

    init(success: Bool, recordId: String?, data: [String: JSONValue]?, error: WriteError?, providerStatus: Int? = nil) {
        self.providerStatus = providerStatus
        self.success = success
        self.recordId = recordId
        self.data = data
        self.error = error
    }

    /// The Ampersand write answer: 200 with the result, or 422 with the provider's message.
    func answer(operationId: String) -> (status: Int, body: [UInt8]) {
        var body: [String: JSONValue] = ["operationId": .string(operationId)]
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
