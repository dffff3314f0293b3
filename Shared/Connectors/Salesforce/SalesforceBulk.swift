import Foundation
import HTTPClient
import Shared

/// What one step of a bulk job came to: the call's response, read like a write's (so that the step is
/// paced, renewed and retried like one), and when it was applied, what the step answered.
public struct BulkStep<Value: Sendable>: Sendable {
    public var response: ConnectorResponse
    public var value: Value?

    init(_ response: ConnectorResponse, _ value: Value? = nil) {
        self.response = response
        self.value = value
    }
}

/// A Bulk API 2.0 job's state as Salesforce reports it.
public struct BulkJobInfo: Sendable, Equatable {
    /// `Open`, `UploadComplete`, `InProgress`, `JobComplete`, `Failed` or `Aborted`.
    public var state: String
    public var errorMessage: String?

    /// Whether the job has ended (its result files are final).
    public var ended: Bool { ["JobComplete", "Failed", "Aborted"].contains(state) }
}

/// Salesforce Bulk API 2.0 ingest jobs, step by step, each step one call: create the job, upload its
/// CSV once, mark the upload complete, read the job's state until it ends, download its result files.
public struct SalesforceBulk: Sendable {
    /// What Salesforce takes in one job's upload (150 MB once base64-encoded).
    public static let maxUploadBytes = 100_000_000
    let connector: SalesforceConnector

    init(connector: SalesforceConnector) {
        self.connector = connector
    }

    private func url(_ connection: Connection, _ path: String = "") -> String {
        "\(connection.baseURL)/services/data/\(SalesforceConnector.apiVersion)/jobs/ingest\(path)"
    }

    private func headers(_ connection: Connection, contentType: String = "application/json") -> [(String, String)] {
        [("Authorization", "Bearer \(connection.accessToken)"), ("Content-Type", contentType), ("Accept", "application/json")]
    }

    /// Creates an ingest job (`upsert` on `externalIdFieldName`, or `delete`); answers the job's id.
    public func createJob(object: String, type: WriteType, externalIdField: String, connection: Connection) async -> BulkStep<String> {
        var body: [String: JSONValue] = [
            "object": .string(object), "operation": .string(type == .delete ? "delete" : "upsert"), "contentType": "CSV",
            "lineEnding": "LF", "columnDelimiter": "COMMA",
        ]
        if type != .delete { body["externalIdFieldName"] = .string(externalIdField) }
        let request = HTTPRequest(method: "POST", url: url(connection), headers: headers(connection),
                                  body: connector.jsonBody(body), timeout: connector.timeout)
        var id: String?
        let response = await connector.call(connector.client, request) { response in
            guard response.status == 200 || response.status == 201 else { return connector.failure(response) }
            guard let found = (try? JSONCoding.decode(JSONValue.self, from: response.body))?["id"]?.stringValue else {
                return .rejected(WriteError(message: "Salesforce answered the new job without an id", raw: response.text),
                                 status: response.status)
            }
            id = found
            return .applied(recordId: found, data: [:], status: response.status)
        }
        return BulkStep(response, id)
    }

    /// Uploads the job's CSV (its only upload).
    public func upload(job: String, csv: [UInt8], connection: Connection) async -> ConnectorResponse {
        let request = HTTPRequest(method: "PUT", url: url(connection, "/\(job)/batches"), headers: headers(connection, contentType: "text/csv"),
                                  body: csv, timeout: max(connector.timeout, 300))
        return await connector.call(connector.client, request) { response in
            guard (200..<300).contains(response.status) else { return connector.failure(response) }
            return .applied(recordId: job, data: [:], status: response.status)
        }
    }

    /// Sets the job's state: `UploadComplete` to run it, `Aborted` to drop it.
    public func setState(job: String, _ state: String, connection: Connection) async -> ConnectorResponse {
        let request = HTTPRequest(method: "PATCH", url: url(connection, "/\(job)"), headers: headers(connection),
                                  body: connector.jsonBody(["state": state]), timeout: connector.timeout)
        return await connector.call(connector.client, request) { response in
            guard response.status == 200 else { return connector.failure(response) }
            return .applied(recordId: job, data: [:], status: response.status)
        }
    }

    /// The job's state.
    public func info(job: String, connection: Connection) async -> BulkStep<BulkJobInfo> {
        let request = HTTPRequest(method: "GET", url: url(connection, "/\(job)"), headers: headers(connection), timeout: connector.timeout)
        var info: BulkJobInfo?
        let response = await connector.call(connector.client, request) { response in
            guard response.status == 200, let body = (try? JSONCoding.decode(JSONValue.self, from: response.body))?.objectValue,
                  let state = body["state"]?.stringValue
            else { return connector.failure(response) }
            info = BulkJobInfo(state: state, errorMessage: body["errorMessage"]?.stringValue)
            return .applied(recordId: job, data: [:], status: response.status)
        }
        return BulkStep(response, info)
    }

    /// One of the job's result files (`successfulResults`, `failedResults`, `unprocessedrecords`): its CSV.
    public func results(job: String, _ file: String, connection: Connection) async -> BulkStep<[UInt8]> {
        let request = HTTPRequest(method: "GET", url: url(connection, "/\(job)/\(file)"),
                                  headers: [("Authorization", "Bearer \(connection.accessToken)"), ("Accept", "text/csv")],
                                  timeout: max(connector.timeout, 300))
        var csv: [UInt8]?
        let response = await connector.call(connector.client, request) { response in
            guard response.status == 200 else { return connector.failure(response) }
            csv = response.body
            return .applied(recordId: job, data: [:], status: response.status)
        }
        return BulkStep(response, csv)
    }
}

extension Connectors {
    /// Salesforce's Bulk API 2.0.
    public var salesforceBulk: SalesforceBulk { SalesforceBulk(connector: salesforce) }
}

