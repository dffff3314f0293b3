import Postgres
import Shared

/// An operation as the API shows it (`GET …/operations/{operationId}`, in the Ampersand shape) and as a
/// `write.async.done` notification carries it: `columns` to select from `operations`, `json` of such a row.
public enum OperationView {
    public static let columns = """
        id::text AS id, project_id::text AS project_id, integration_id::text AS integration_id,
        installation_id::text AS installation_id, group_ref, object_name, write_type, mode, status, record_id,
        errors::text AS errors, provider_status, possibly_duplicated, attempts, results::text AS results,
        records_processed, records_succeeded, records_failed, records_total, provider_job_ids::text AS provider_job_ids,
        \(timestamp("create_time")) AS create_time, \(timestamp("update_time")) AS update_time
        """

    /// An operation in the Ampersand shape.
    public static func json(_ row: PostgresRow) throws -> JSONValue {
        let status = try row.string("status")
        let objectName = try row.string("object_name")
        let writeType = try row.string("write_type")
        let recordId = row["record_id"]
        var metadata: [String: JSONValue] = [
            "objects": [.string(objectName)],
            "writeType": .string(writeType),
            "mode": .string(try row.string("mode")),
            "groupRef": .string(try row.string("group_ref")),
            "possiblyDuplicated": .bool(row.bool("possibly_duplicated") ?? false),
            "retry": ["attempts": .number(Double(row.int("attempts") ?? 0))],
            "updateTime": .string(try row.string("update_time")),
        ]
        if let recordId { metadata["recordId"] = .string(recordId) }
        if status == "success", let recordId, writeType != "delete" { metadata["successfulRecordIds"] = [.string(recordId)] }
        if let results = row["results"].flatMap({ try? JSONCoding.decode([BatchItemResult].self, from: $0) }) {
            metadata["batchSize"] = .number(Double(results.count))
            metadata["successCount"] = .number(Double(results.filter(\.success).count))
            metadata["failureCount"] = .number(Double(results.filter { !$0.success }.count))
            metadata["successfulRecordIds"] = .array(results.compactMap { $0.success ? $0.recordId.map(JSONValue.string) : nil })
        }
        let bulk = try row.string("mode") == WriteMode.bulk.rawValue
        if bulk {
            var progress: [String: JSONValue] = [
                "processed": .number(Double(row.int("records_processed") ?? 0)),
                "succeeded": .number(Double(row.int("records_succeeded") ?? 0)),
                "failed": .number(Double(row.int("records_failed") ?? 0)),
            ]
            if let total = row.int("records_total") { progress["total"] = .number(Double(total)) }
            metadata["progress"] = .object(progress)
            if let jobs = row["provider_job_ids"].flatMap({ try? JSONCoding.decode([String].self, from: $0) }) {
                metadata["providerJobIds"] = .array(jobs.map(JSONValue.string))
            }
            if (row.int("records_failed") ?? 0) > 0 {
                metadata["failedRecordsURL"] = .string("/v1/projects/\(try row.string("project_id"))/operations/\(try row.string("id"))/failed-records")
            }
        }
        if let providerStatus = row.int("provider_status") { metadata["providerStatus"] = .number(Double(providerStatus)) }
        if let errors = row["errors"].flatMap({ try? JSONCoding.decode([WriteError].self, from: $0) }) {
            metadata["errors"] = .array(errors.map { error in
                var entry: [String: JSONValue] = ["message": .string(error.message)]
                if let code = error.code { entry["code"] = .string(code) }
                if error.deadLettered { entry["deadLettered"] = true }
                if let existing = error.existingRecordId { entry["existingRecordId"] = .string(existing) }
                return .object(entry)
            })
        }
        let summary: String
        switch status {
        case _ where bulk:
            let progress = metadata["progress"]
            let counts = "\(progress?["processed"]?.scalarText ?? "0") rows read, \(progress?["succeeded"]?.scalarText ?? "0") written, "
                + "\(progress?["failed"]?.scalarText ?? "0") failed"
            summary = "bulk \(writeType) of \(objectName) records: " + (status == "in_progress" ? "in progress, " : "") + counts
        case _ where metadata["batchSize"] != nil:
            let counts = "\(metadata["successCount"]?.scalarText ?? "0") succeeded, \(metadata["failureCount"]?.scalarText ?? "0") failed"
            summary = "batch \(writeType) of \(metadata["batchSize"]?.scalarText ?? "") \(objectName) records: "
                + (status == "in_progress" ? "in progress" : counts)
        case "success": summary = "\(writeType) of \(objectName) \(recordId ?? "") succeeded"
        case "failure": summary = "\(writeType) of \(objectName) failed"
        default: summary = "\(writeType) of \(objectName) in progress"
        }
        let body: [String: JSONValue] = [
            "id": .string(try row.string("id")),
            "projectId": .string(try row.string("project_id")),
            "integrationId": .string(try row.string("integration_id")),
            "installationId": .string(try row.string("installation_id")),
            "configId": .string(try row.string("installation_id")),
            "actionType": "write",
            "status": .string(status),
            "result": .string(summary),
            "metadata": .object(metadata),
            "createTime": .string(try row.string("create_time")),
        ]
        return .object(body)
    }
}
