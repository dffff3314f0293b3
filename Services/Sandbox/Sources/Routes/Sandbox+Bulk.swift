import CSV
import Foundation
import Hummingbird
import Shared

/// A Bulk API 2.0 ingest job.
struct BulkJob: Sendable {
    var id: String
    /// The org that made it, whose schema its rows are validated with.
    var org: String
    var object: String
    var operation: String
    var externalIdFieldName: String?
    var lineEnding: String
    var columnDelimiter: String
    var apiVersion: String
    var state = "Open"
    var createdDate: String
    var systemModstamp: String
    var data: String?
    var errorMessage: String?
    var header: [String] = []
    var successful: [[String]] = []
    var failed: [[String]] = []
    var unprocessed: [[String]] = []

    var info: JSONValue {
        var info: [String: JSONValue] = [
            "id": .string(id), "operation": .string(operation), "object": .string(object),
            "createdById": "005000000000001AAA", "createdDate": .string(createdDate), "systemModstamp": .string(systemModstamp),
            "state": .string(state), "concurrencyMode": "Parallel", "contentType": "CSV",
            "apiVersion": .number(Double(apiVersion.dropFirst()) ?? 60), "jobType": "V2Ingest",
            "contentUrl": .string("services/data/\(apiVersion)/jobs/ingest/\(id)/batches"), "lineEnding": .string(lineEnding),
            "columnDelimiter": .string(columnDelimiter), "numberRecordsProcessed": .number(Double(successful.count + failed.count)),
            "numberRecordsFailed": .number(Double(failed.count)), "retries": 0, "totalProcessingTime": 0,
            "apiActiveProcessingTime": 0, "apexProcessingTime": 0,
        ]
        if let externalIdFieldName { info["externalIdFieldName"] = .string(externalIdFieldName) }
        if let errorMessage { info["errorMessage"] = .string(errorMessage) }
        return .object(info)
    }

    static let delimiters: [String: Character] = [
        "COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`",
    ]
}

/// Salesforce Bulk API 2.0 ingest, `/services/data/vXX.X/jobs/ingest`: create a job, upload its CSV once,
/// close it with UploadComplete (or abort it); the job then runs (UploadComplete → InProgress →
/// JobComplete | Failed) and its successful, failed and unprocessed records are CSVs to download.
extension Sandbox {
    func addBulkRoutes(to router: Router<BasicRequestContext>) {
        let jobs = "services/data/:version/jobs/ingest"
        router.post(RouterPath(jobs)) { request, context in
            var request = request
            let body = await jsonBody(&request)
            let version = context.parameters.get("version") ?? ""
            return try await self.salesforce(request, context, object: "bulk", recordId: nil, body: body, method: "POST") { state in
                let operations = ["insert", "update", "upsert", "delete", "hardDelete"]
                guard let object = body?["object"]?.stringValue, state.salesforceObject(object) != nil else {
                    return Self.bulkError(400, "INVALIDENTITY", "Entity '\(body?["object"]?.stringValue ?? "")' is not supported by the Bulk API.")
                }
                guard let operation = body?["operation"]?.stringValue, operations.contains(operation) else {
                    return Self.bulkError(400, "INVALIDJOB", "Invalid operation: \(body?["operation"]?.stringValue ?? "")")
                }
                let external = body?["externalIdFieldName"]?.stringValue
                if operation == "upsert" && external == nil {
                    return Self.bulkError(400, "INVALIDJOB", "External ID was blank for \(object). An External ID must be specified for upsert.")
                }
                let lineEnding = body?["lineEnding"]?.stringValue ?? "LF"
                let delimiter = body?["columnDelimiter"]?.stringValue ?? "COMMA"
                guard ["LF", "CRLF"].contains(lineEnding), BulkJob.delimiters[delimiter] != nil,
                    (body?["contentType"]?.stringValue ?? "CSV") == "CSV"
                else { return Self.bulkError(400, "INVALIDJOB", "Invalid lineEnding, columnDelimiter or contentType") }
                let now = Timestamp.now()
                let job = BulkJob(
                    id: state.newSalesforceId(prefix: "750"), org: state.salesforceOrg, object: object, operation: operation, externalIdFieldName: external,
                    lineEnding: lineEnding, columnDelimiter: delimiter, apiVersion: version, createdDate: now, systemModstamp: now)
                state.bulkJobs[job.id] = job
                return (200, job.info, job.id)
            }
        }
        router.get(RouterPath("\(jobs)/:id")) { request, context in
            try await self.bulkJob(request, context, method: "GET") { job, _ in (200, job.info, nil) }
        }
        router.delete(RouterPath("\(jobs)/:id")) { request, context in
            try await self.bulkJob(request, context, method: "DELETE") { job, state in
                state.bulkJobs[job.id] = nil
                return (204, [String](), job.id)
            }
        }
        router.put(RouterPath("\(jobs)/:id/batches")) { request, context in
            var request = request
            let limit = self.configuration.bulkMaxUploadBytes
            guard let csv = try? await request.collectBody(upTo: limit) else {
                return try await self.bulkJob(request, context, method: "PUT") { _, _ in
                    Self.bulkError(400, "EXCEEDED_QUOTA", "The upload is larger than \(limit) bytes of CSV; split it into several jobs")
                }
            }
            let text = String(buffer: csv)
            return try await self.bulkJob(request, context, method: "PUT", logged: .string(String(text.prefix(4096)))) { job, state in
                guard job.state == "Open" else {
                    return Self.bulkError(400, "INVALIDJOBSTATE", "Job \(job.id) is not Open: \(job.state)")
                }
                guard job.data == nil else {
                    return Self.bulkError(400, "BULK_API_ERROR", "Found multiple contents for job: <\(job.id)>, please 'Close' / 'Abort' / 'Delete' the current Job then create a new Job and make sure you only do 'PUT' once on a given Job.")
                }
                state.bulkJobs[job.id]?.data = text
                return (201, [String](), job.id)
            }
        }
        router.patch(RouterPath("\(jobs)/:id")) { request, context in
            var request = request
            let body = await jsonBody(&request)
            return try await self.bulkJob(request, context, method: "PATCH", logged: body) { job, state in
                let wanted = body?["state"]?.stringValue ?? ""
                switch (wanted, job.state) {
                case ("UploadComplete", "Open"):
                    state.bulkJobs[job.id]?.state = "UploadComplete"
                    state.bulkJobs[job.id]?.systemModstamp = Timestamp.now()
                    Task { try? await Task.sleep(for: .milliseconds(20)); self.run(job.id) }
                case ("Aborted", "Open"), ("Aborted", "UploadComplete"):
                    state.bulkJobs[job.id]?.state = "Aborted"
                default:
                    return Self.bulkError(400, "INVALIDJOBSTATE", "Invalid state transition from \(job.state) to \(wanted)")
                }
                return (200, state.bulkJobs[job.id]!.info, job.id)
            }
        }
        for (name, kind) in [("successfulResults", 0), ("failedResults", 1), ("unprocessedrecords", 2)] {
            router.get(RouterPath("\(jobs)/:id/\(name)")) { request, context in
                var csv = ""
                let response = try await self.bulkJob(request, context, method: "GET") { job, _ in
                    let prefix = [["sf__Id", "sf__Created"], ["sf__Id", "sf__Error"], []][kind]
                    let rows = [job.successful, job.failed, job.unprocessed][kind]
                    csv = Self.csv([prefix + job.header] + rows)
                    return (200, [String](), nil)
                }
                guard response.status == .ok else { return response }
                return Response(status: .ok, headers: [.contentType: "text/csv"], body: .init(byteBuffer: ByteBuffer(string: csv)))
            }
        }
    }

    /// A call on one job: version, gate, and the job looked up (404 when there is none).
    private func bulkJob(
        _ request: Request, _ context: BasicRequestContext, method: String, logged: JSONValue? = nil,
        _ answer: @escaping (BulkJob, inout SandboxState) -> (Int, any Encodable, String?)
    ) async throws -> Response {
        let id = context.parameters.get("id") ?? ""
        return try await salesforce(request, context, object: "bulk", recordId: id, body: logged, method: method) { state in
            guard let job = state.bulkJobs[id] else {
                return Self.bulkError(404, "NOT_FOUND", "The requested resource does not exist")
            }
            return answer(job, &state)
        }
    }

    private static func bulkError(_ status: Int, _ code: String, _ message: String) -> (Int, any Encodable, String?) {
        (status, [SalesforceError(message: message, errorCode: code)], nil)
    }

    /// Runs an uploaded job: each row becomes an operation; the job ends JobComplete, or Failed when its
    /// data cannot be read.
    /// Whether the text has a CRLF line ending, looked for in its bytes (Foundation's `contains` takes
    /// longer over a job's file than running the job).
    static func hasCRLF(_ text: String) -> Bool {
        var previous: UInt8 = 0
        for byte in text.utf8 {
            if previous == UInt8(ascii: "\r") && byte == UInt8(ascii: "\n") { return true }
            previous = byte
        }
        return false
    }

    private func run(_ id: String) {
        state.withLock { state in
            guard var job = state.bulkJobs[id], job.state == "UploadComplete" else { return }
            job.state = "InProgress"
            state.salesforceOrg = job.org
            defer {
                job.systemModstamp = Timestamp.now()
                state.bulkJobs[id] = job
            }
            let text = job.data ?? ""
            if job.lineEnding == "LF" && Self.hasCRLF(text) {
                job.state = "Failed"
                job.errorMessage = "LineEnding is invalid on user data. Current LineEnding setting is LF"
                return
            }
            guard let rows = CSVTable.parse(text, delimiter: BulkJob.delimiters[job.columnDelimiter] ?? ","), let header = rows.first,
                !header.isEmpty
            else {
                job.state = "Failed"
                job.errorMessage = "InvalidBatch : Failed to parse CSV. Found unescaped quote or no header row."
                return
            }
            job.header = header
            for row in rows.dropFirst() {
                var fields: [String: JSONValue] = [:]
                for (name, value) in zip(header, row) where !value.isEmpty {
                    fields[name] = value == "#N/A" ? .null : .string(value)
                }
                let operation: SalesforceOperation
                switch job.operation {
                case "insert":
                    operation = .create(object: job.object, fields: fields)
                case "update":
                    operation = .update(object: job.object, id: fields["Id"]?.stringValue ?? "", fields: fields)
                case "upsert":
                    let field = job.externalIdFieldName ?? "Id"
                    operation = .upsert(object: job.object, field: field, value: fields[field]?.scalarText ?? "", fields: fields)
                default:
                    operation = .delete(object: job.object, id: fields["Id"]?.stringValue ?? "")
                }
                let result = state.apply(operation)
                if let error = result.error {
                    let detail = "\(error.errorCode):\(error.message):\(error.fields.joined(separator: ",")) --"
                    job.failed.append([result.id ?? "", detail] + row)
                } else if result.status == 300 {
                    job.failed.append(["", "DUPLICATE_EXTERNAL_ID:more than one record found for external id field:-- "] + row)
                } else {
                    job.successful.append([result.id ?? "", result.created == true ? "true" : "false"] + row)
                }
            }
            job.state = "JobComplete"
        }
    }

    /// Every field quoted, rows ending in LF, as Salesforce writes result files.
    static func csv(_ rows: [[String]]) -> String {
        rows.map { CSVFormat.row($0, quoteAll: true) }.joined()
    }
}

/// RFC 4180 CSV: quoted fields may hold delimiters, quotes (doubled) and line breaks.
enum CSVTable {
    /// The rows of a CSV text (LF or CRLF line endings), or nil when a quote is left open or stray.
    static func parse(_ text: String, delimiter: Character) -> [[String]]? {
        var reader = CSVReader(delimiter: delimiter.asciiValue ?? UInt8(ascii: ","), lineEndings: .lfOrCRLF)
        var rows: [[String]] = []
        do {
            try reader.feed(text.utf8) { record, _ in rows.append(record) }
            try reader.finish { record, _ in rows.append(record) }
        } catch {
            return nil
        }
        return rows
    }
}
