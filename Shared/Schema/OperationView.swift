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
        let progress = metadata["progress"]
        let summary = Self.summary(
            status: status, writeType: writeType, objectName: objectName, recordId: recordId,
            bulk: bulk ? (Int(progress?["processed"]?.scalarText ?? "") ?? 0, Int(progress?["succeeded"]?.scalarText ?? "") ?? 0,
                          Int(progress?["failed"]?.scalarText ?? "") ?? 0) : nil,
            batch: metadata["batchSize"].map { size in
                (Int(size.scalarText ?? "") ?? 0, Int(metadata["successCount"]?.scalarText ?? "") ?? 0,
                 Int(metadata["failureCount"]?.scalarText ?? "") ?? 0)
            })
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

    /// What an operation came to, in words: `create of contact 003… succeeded`, `batch create of 100 contact
    /// records: 99 succeeded, 1 failed`, `bulk upsert of contact records: 10 rows read, 9 written, 1 failed`.
    public static func summary(status: String, writeType: String, objectName: String, recordId: String?,
                               bulk: (processed: Int, succeeded: Int, failed: Int)?, batch: (size: Int, succeeded: Int, failed: Int)?)
        -> String
    {
        if let bulk {
            return "bulk \(writeType) of \(objectName) records: " + (status == "in_progress" ? "in progress, " : "")
                + "\(bulk.processed) rows read, \(bulk.succeeded) written, \(bulk.failed) failed"
        }
        if let batch {
            return "batch \(writeType) of \(batch.size) \(objectName) records: "
                + (status == "in_progress" ? "in progress" : "\(batch.succeeded) succeeded, \(batch.failed) failed")
        }
        switch status {
        case "success": return "\(writeType) of \(objectName) \(recordId ?? "") succeeded"
        case "failure": return "\(writeType) of \(objectName) failed"
        default: return "\(writeType) of \(objectName) in progress"
        }
    }
}
