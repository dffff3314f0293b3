import Foundation
import HTTPTypes
import Kafka
import Shared
import Testing

@testable import API

/// How a refusal must look: the error format of its API shape, with the status, and the field, header
/// or parameter it names where it names one.
enum Shape: Sendable {
    /// RFC 9457 problem+json (Write and control APIs), naming `issue` in `issues[].name`.
    case problem(issue: String?)
    /// `{errors: [{status, code, meta.origin}]}` (unified CRM and pass-through).
    case unified(code: String)
    /// `{node_status: "Failed", message, errors?: [{parameter}]}` (action catalog).
    case catalog(parameter: String?)
    /// `{type, message}` (action instances).
    case instance(type: String)
    /// A console page (HTML) with the status.
    case page
    /// A console redirect (303) to `location`.
    case redirect(String)
}

/// One refused request and the answer it must get.
struct Refusal: Sendable, CustomTestStringConvertible {
    var name: String
    var method: HTTPRequest.Method
    var path: String
    var headers: [String: String]
    var body: String?
    var status: Int
    var shape: Shape

    init(_ name: String, _ method: HTTPRequest.Method, _ path: String, _ headers: [String: String], body: String? = nil,
         _ status: Int, _ shape: Shape) {
        (self.name, self.method, self.path, self.headers, self.body, self.status, self.shape) = (name, method, path, headers, body, status, shape)
    }

    init(_ name: String, _ method: HTTPRequest.Method, _ path: String, body: String? = nil, _ status: Int, _ shape: Shape) {
        self.init(name, method, path, [:], body: body, status, shape)
    }

    var testDescription: String { "\(name): \(method) \(path) → \(status)" }
}

let project = "/v1/projects/\(RouteHarness.project)"
let key = ["X-Api-Key": RouteHarness.apiKey]
let unknownId = "6d1c1c9e-0000-4000-8000-000000000000"
let sf = "\(project)/integrations/write-to-salesforce"
let hubspotCustomer = key.merging(["x-provider-name": "hubspot", "x-customer-id": RouteHarness.groupRef]) { $1 }
let catalogAccount = key.merging(["linked_account_id": RouteHarness.groupRef]) { $1 }
/// Stands for the seeded customer token in a case's headers.
let customerToken = ["Authorization": "Bearer {token}"]
/// Stands for a console session of the project in a case's headers.
let consoleSession = ["Cookie": "{session}"]
let contact = #"{"groupRef":"customer-1","record":{"LastName":"Potter"}}"#

/// The Write API's refusals.
let writeRefusals: [Refusal] = [
    .init("no API key", .post, "\(sf)/objects/contact", body: contact, 401, .problem(issue: "X-Api-Key")),
    .init("an unknown API key", .post, "\(sf)/objects/contact", ["X-Api-Key": "wrong"], body: contact, 401, .problem(issue: "X-Api-Key")),
    .init("the key's project is another", .post, "/v1/projects/other/integrations/write-to-salesforce/objects/contact", key, body: contact,
          404, .problem(issue: "projectIdOrName")),
    .init("an unknown integration", .post, "\(project)/integrations/nope/objects/contact", key, body: contact, 404,
          .problem(issue: "integrationId")),
    .init("an object the integration does not write", .post, "\(sf)/objects/widget", key, body: contact, 404, .problem(issue: "objectName")),
    .init("a body that is not JSON", .post, "\(sf)/objects/contact", key, body: "{not json", 400, .problem(issue: "body")),
    .init("an empty body", .post, "\(sf)/objects/contact", key, body: "", 400, .problem(issue: "body")),
    .init("a body that is not an object", .post, "\(sf)/objects/contact", key, body: "[1]", 400, .problem(issue: "body")),
    .init("no groupRef", .post, "\(sf)/objects/contact", key, body: #"{"record":{"LastName":"Potter"}}"#, 400, .problem(issue: "groupRef")),
    .init("an unknown type", .post, "\(sf)/objects/contact", key, body: #"{"groupRef":"customer-1","type":"merge","record":{"A":1}}"#, 400,
          .problem(issue: "type")),
    .init("an unknown mode", .post, "\(sf)/objects/contact", key, body: #"{"groupRef":"customer-1","mode":"later","record":{"A":1}}"#,
          400, .problem(issue: "mode")),
    .init("no record", .post, "\(sf)/objects/contact", key, body: #"{"groupRef":"customer-1"}"#, 400, .problem(issue: "record")),
    .init("a create with an id", .post, "\(sf)/objects/contact", key, body: #"{"groupRef":"customer-1","record":{"id":"003","A":1}}"#, 400,
          .problem(issue: "record.id")),
    .init("an update without an id", .post, "\(sf)/objects/contact", key,
          body: #"{"groupRef":"customer-1","type":"update","record":{"A":1}}"#, 400, .problem(issue: "record.id")),
    .init("a batch of deletes", .post, "\(sf)/objects/contact", key,
          body: #"{"groupRef":"customer-1","type":"delete","batch":[{"record":{"id":"1"}}]}"#, 400, .problem(issue: "type")),
    .init("an empty batch", .post, "\(sf)/objects/contact", key, body: #"{"groupRef":"customer-1","batch":[]}"#, 400, .problem(issue: "batch")),
    .init("record and batch at once", .post, "\(sf)/objects/contact", key,
          body: #"{"groupRef":"customer-1","record":{"A":1},"batch":[{"record":{"A":1}}]}"#, 400, .problem(issue: "batch")),
    .init("a retry deadline out of range", .post, "\(sf)/objects/contact", key,
          body: #"{"groupRef":"customer-1","record":{"A":1},"retryPolicy":{"deadlineHours":100}}"#, 400,
          .problem(issue: "retryPolicy.deadlineHours")),
    .init("auto-batching a synchronous write", .post, "\(sf)/objects/contact", key,
          body: #"{"groupRef":"customer-1","record":{"A":1},"autoBatchPolicy":{"maxDelayMinutes":1}}"#, 400, .problem(issue: "autoBatchPolicy")),
    .init("a customer without an installation", .post, "\(sf)/objects/contact", key, body: #"{"groupRef":"nobody","record":{"A":1}}"#,
          404, .problem(issue: "groupRef")),
    .init("a record holding NUL", .post, "\(sf)/objects/contact", key, body: #"{"groupRef":"customer-1","record":{"LastName":"P\u0000"}}"#,
          400, .problem(issue: "record.LastName")),
    .init("a body over the limit", .post, "\(sf)/objects/contact", key,
          body: #"{"groupRef":"customer-1","record":{"LastName":""# + String(repeating: "x", count: 70_000) + #""}}"#, 413, .problem(issue: nil)),
    // Bulk writes.
    .init("PUT without :async", .put, "\(sf)/objects/contact", key, body: #"{"groupRef":"customer-1"}"#, 404, .problem(issue: "objectName")),
    .init("a percent-encoded :async names the bulk route", .put, "\(sf)/objects/contact%3Aasync", key,
          body: #"{"primaryKey":"Email","recordsCSV":"Email\na@b\n"}"#, 400, .problem(issue: "groupRef")),
    .init("a CSV holding NUL", .put, "\(sf)/objects/contact:async", key,
          body: #"{"groupRef":"customer-1","primaryKey":"Email","recordsCSV":"Email\na@b\u0000\n"}"#, 400, .problem(issue: "recordsCSV")),
    .init("a bulk write without groupRef", .put, "\(sf)/objects/contact:async", key, body: #"{"primaryKey":"Email","recordsCSV":"Email\na@b\n"}"#,
          400, .problem(issue: "groupRef")),
    .init("a bulk update", .put, "\(sf)/objects/contact:async", key,
          body: #"{"groupRef":"customer-1","type":"update","primaryKey":"Email","recordsCSV":"Email\na@b\n"}"#, 400, .problem(issue: "type")),
    .init("a bulk write without primaryKey", .put, "\(sf)/objects/contact:async", key, body: #"{"groupRef":"customer-1","recordsCSV":"Email\na@b\n"}"#,
          400, .problem(issue: "primaryKey")),
    .init("a bulk write without records", .put, "\(sf)/objects/contact:async", key, body: #"{"groupRef":"customer-1","primaryKey":"Email"}"#,
          400, .problem(issue: "recordsCSV")),
    .init("recordsCSV and recordsURL at once", .put, "\(sf)/objects/contact:async", key,
          body: #"{"groupRef":"customer-1","primaryKey":"Email","recordsCSV":"Email\na@b\n","recordsURL":"https://example.com/a.csv"}"#,
          400, .problem(issue: "recordsURL")),
    .init("a recordsURL at a loopback address", .put, "\(sf)/objects/contact:async", key,
          body: #"{"groupRef":"customer-1","primaryKey":"Email","recordsURL":"http://127.0.0.1:9/a.csv"}"#, 400, .problem(issue: "recordsURL")),
    .init("a bulk delete not by id", .post, "\(sf)/objects/contact", key,
          body: #"{"groupRef":"customer-1","mode":"bulk","type":"delete","primaryKey":"Email","recordsCSV":"Email\na@b\n"}"#,
          400, .problem(issue: "primaryKey")),
]

/// The control API's refusals: operations, integrations, provider apps, connections, installations,
/// customer-token keys, OAuth.
let controlRefusals: [Refusal] = [
    .init("an operation id that is not a UUID", .get, "\(project)/operations/not-an-id", key, 404, .problem(issue: "operationId")),
    .init("an unknown operation", .get, "\(project)/operations/\(unknownId)", key, 404, .problem(issue: "operationId")),
    .init("the logs of an unknown operation", .get, "\(project)/operations/\(unknownId)/logs", key, 404, .problem(issue: "operationId")),
    .init("the failed records of an unknown operation", .get, "\(project)/operations/\(unknownId)/failed-records", key, 404,
          .problem(issue: "operationId")),
    .init("operations without a key", .get, "\(project)/operations/\(unknownId)", 401, .problem(issue: "X-Api-Key")),
    .init("an installation id that is not a UUID", .get, "\(sf)/installations/nope/operations", key, 404, .problem(issue: "installationId")),
    .init("a deploy without sourceYaml", .put, "\(project)/integrations:batch", key, body: "{}", 400, .problem(issue: "sourceYaml")),
    .init("a deploy from a zip URL", .put, "\(project)/integrations:batch", key, body: #"{"sourceZipUrl":"https://example.com/a.zip"}"#, 400,
          .problem(issue: "sourceZipUrl")),
    .init("a manifest that does not parse", .put, "\(project)/integrations:batch", key, body: #"{"sourceYaml":"specVersion: [1"}"#, 422,
          .problem(issue: nil)),
    .init("integrations without a key", .get, "\(project)/integrations", 401, .problem(issue: "X-Api-Key")),
    .init("an unknown integration", .get, "\(project)/integrations/nope", key, 404, .problem(issue: "integrationId")),
    .init("metadata without groupRef", .get, "\(sf)/objects/contact/metadata", key, 400, .problem(issue: "groupRef")),
    .init("metadata of a customer without an installation", .get, "\(sf)/objects/contact/metadata?groupRef=nobody", key, 404,
          .problem(issue: "groupRef")),
    .init("a provider app without a provider", .post, "\(project)/provider-apps", key, body: "{}", 400, .problem(issue: "provider")),
    .init("a provider app of an unknown provider", .post, "\(project)/provider-apps", key,
          body: #"{"provider":"zoho","clientId":"a","clientSecret":"b"}"#, 400, .problem(issue: "provider")),
    .init("a provider app without clientId", .post, "\(project)/provider-apps", key, body: #"{"provider":"hubspot","clientSecret":"b"}"#, 400,
          .problem(issue: "clientId")),
    .init("a connection without credentials", .post, "\(project)/connections:generate", key,
          body: #"{"provider":"hubspot","groupRef":"g","consumerRef":"c"}"#, 400, .problem(issue: "oauth2AuthorizationCode")),
    .init("a connection without an access token", .post, "\(project)/connections:generate", key,
          body: #"{"provider":"hubspot","groupRef":"g","consumerRef":"c","oauth2AuthorizationCode":{}}"#, 400,
          .problem(issue: "oauth2AuthorizationCode.accessToken.token")),
    .init("a connection id that is not a UUID", .get, "\(project)/connections/nope", key, 404, .problem(issue: "connectionId")),
    .init("an unknown connection", .get, "\(project)/connections/\(unknownId)", key, 404, .problem(issue: "connectionId")),
    .init("connections with an unknown key", .get, "\(project)/connections", ["X-Api-Key": "wrong"], 401, .problem(issue: "X-Api-Key")),
    .init("an installation without groupRef", .post, "\(sf)/installations", key, body: "{}", 400, .problem(issue: "groupRef")),
    .init("a second installation for a customer", .post, "\(sf)/installations", key,
          body: #"{"groupRef":"customer-1","config":{"content":{}}}"#, 409, .problem(issue: nil)),
    .init("an unknown installation", .get, "\(sf)/installations/\(unknownId)", key, 404, .problem(issue: "installationId")),
    .init("a change without its config", .patch, "\(sf)/installations/\(unknownId)", key, body: "{}", 400,
          .problem(issue: "installation.config.content")),
    .init("removing an unknown installation", .delete, "\(sf)/installations/\(unknownId)", key, 404, .problem(issue: "installationId")),
    .init("installations of an unknown integration", .get, "\(project)/integrations/nope/installations", key, 404,
          .problem(issue: "integrationId")),
    .init("customer-token keys without a key", .get, "\(project)/customer-token-keys", 401, .problem(issue: "X-Api-Key")),
    .init("a customer-token key from a body that is not JSON", .post, "\(project)/customer-token-keys", key, body: "{not json", 400,
          .problem(issue: "body")),
    .init("revoking an unknown customer-token key", .delete, "\(project)/customer-token-keys/wbk_nope", key, 404, .problem(issue: "key")),
    .init("an OAuth start without its project", .post, "/v1/oauth-connect", key, body: "{}", 400, .problem(issue: "projectIdOrName")),
    .init("an OAuth start with an unknown key", .post, "/v1/oauth-connect", ["X-Api-Key": "wrong"],
          body: #"{"projectIdOrName":"routes","provider":"hubspot","groupRef":"g","consumerRef":"c"}"#, 401, .problem(issue: "X-Api-Key")),
    .init("an OAuth start without a provider app", .post, "/v1/oauth-connect", key,
          body: #"{"projectIdOrName":"routes","provider":"hubspot","groupRef":"g","consumerRef":"c"}"#, 422, .problem(issue: "provider")),
    .init("an OAuth callback without state", .get, "/callbacks/v1/oauth?code=abc", 400, .problem(issue: "state")),
    .init("an OAuth callback with an unknown state", .get, "/callbacks/v1/oauth?code=abc&state=nope", 400, .problem(issue: "state")),
    .init("changing an unknown connection", .patch, "\(project)/connections/\(unknownId)", key, body: "{}", 404,
          .problem(issue: "connectionId")),
    .init("removing an unknown connection", .delete, "\(project)/connections/\(unknownId)", key, 404, .problem(issue: "connectionId")),
] + notificationRefusals

/// The notification routes' refusals.
let notificationRefusals: [Refusal] = [
    .init("a destination without a name", .post, "\(project)/destinations", key, body: #"{"type":"webhook","metadata":{"url":"https://example.com"}}"#,
          400, .problem(issue: "name")),
    .init("a destination at a private address", .post, "\(project)/destinations", key,
          body: #"{"name":"d","type":"webhook","metadata":{"url":"http://10.0.0.1/hook"}}"#, 422, .problem(issue: "metadata.url")),
    .init("a destination of another type", .post, "\(project)/destinations", key,
          body: #"{"name":"d","type":"sqs","metadata":{"queueUrl":"https://example.com"}}"#, 422, .problem(issue: "type")),
    .init("destinations without a key", .get, "\(project)/destinations", 401, .problem(issue: "X-Api-Key")),
    .init("an unknown destination", .get, "\(project)/destinations/nope", key, 404, .problem(issue: "destination")),
    .init("changing an unknown destination", .patch, "\(project)/destinations/nope", key, body: #"{"updateMask":["name"]}"#, 404,
          .problem(issue: "destination")),
    .init("removing an unknown destination", .delete, "\(project)/destinations/nope", key, 404, .problem(issue: "destination")),
    .init("the deliveries of an unknown destination", .get, "\(project)/destinations/nope/deliveries", key, 404, .problem(issue: "destination")),
    .init("a topic without a name", .post, "\(project)/topics", key, body: "{}", 400, .problem(issue: "name")),
    .init("topics without a key", .get, "\(project)/topics", 401, .problem(issue: "X-Api-Key")),
    .init("an unknown topic", .get, "\(project)/topics/\(unknownId)", key, 404, .problem(issue: "topicId")),
    .init("renaming an unknown topic", .patch, "\(project)/topics/\(unknownId)", key, body: #"{"name":"t"}"#, 404, .problem(issue: "topicId")),
    .init("removing an unknown topic", .delete, "\(project)/topics/nope", key, 404, .problem(issue: "topicId")),
    .init("a route of an event Writeback does not send", .post, "\(project)/notification-event-topic-routes", key,
          body: #"{"eventType":"read.backfill.done","topicId":"x"}"#, 422, .problem(issue: "eventType")),
    .init("routes filtered by an unknown event", .get, "\(project)/notification-event-topic-routes?eventType=nope", key, 422,
          .problem(issue: "eventType")),
    .init("an unknown event route", .get, "\(project)/notification-event-topic-routes/\(unknownId)", key, 404, .problem(issue: "routeId")),
    .init("removing an unknown event route", .delete, "\(project)/notification-event-topic-routes/nope", key, 404, .problem(issue: "routeId")),
    .init("a destination route without a destination", .post, "\(project)/topic-destination-routes", key, body: #"{"topicId":"x"}"#, 400,
          .problem(issue: "destinationId")),
    .init("destination routes without a key", .get, "\(project)/topic-destination-routes", 401, .problem(issue: "X-Api-Key")),
    .init("an unknown destination route", .get, "\(project)/topic-destination-routes/\(unknownId)", key, 404, .problem(issue: "routeId")),
    .init("removing an unknown destination route", .delete, "\(project)/topic-destination-routes/\(unknownId)", key, 404,
          .problem(issue: "routeId")),
    .init("events without a key", .get, "\(project)/notification-events", 401, .problem(issue: "X-Api-Key")),
    .init("an unknown event", .get, "\(project)/notification-events/\(unknownId)", key, 404, .problem(issue: "eventId")),
    .init("the deliveries of an unknown event", .get, "\(project)/notification-events/nope/deliveries", key, 404, .problem(issue: "eventId")),
    .init("an unknown delivery", .get, "\(project)/notification-deliveries/\(unknownId)", key, 404, .problem(issue: "deliveryId")),
    .init("sending an unknown delivery again", .post, "\(project)/notification-deliveries/\(unknownId)/resend", key, 404,
          .problem(issue: "deliveryId")),
]

/// The unified CRM and pass-through APIs' refusals.
let unifiedRefusals: [Refusal] = [
    .init("no API key", .post, "/crm/v2/contacts", ["x-provider-name": "hubspot", "x-customer-id": "customer-1"], body: #"{"record":{}}"#,
          401, .unified(code: "UNAUTHORIZED")),
    .init("no provider", .post, "/crm/v2/contacts", key.merging(["x-customer-id": "customer-1"]) { $1 }, body: #"{"record":{}}"#,
          400, .unified(code: "BAD_REQUEST")),
    .init("an unknown provider", .post, "/crm/v2/contacts", hubspotCustomer.merging(["x-provider-name": "zoho"]) { $1 },
          body: #"{"record":{}}"#, 400, .unified(code: "BAD_REQUEST")),
    .init("no customer", .post, "/crm/v2/contacts", key.merging(["x-provider-name": "hubspot"]) { $1 }, body: #"{"record":{}}"#,
          400, .unified(code: "BAD_REQUEST")),
    .init("an object outside the common schema", .post, "/crm/v2/widgets", hubspotCustomer, body: #"{"record":{}}"#, 404,
          .unified(code: "NOT_FOUND")),
    .init("no record", .post, "/crm/v2/contacts", hubspotCustomer, body: "{}", 400, .unified(code: "BAD_REQUEST")),
    .init("a record that is not an object", .post, "/crm/v2/contacts", hubspotCustomer, body: #"{"record":"x"}"#, 400,
          .unified(code: "BAD_REQUEST")),
    .init("a body that is not JSON", .post, "/crm/v2/contacts", hubspotCustomer, body: "{not json", 400, .unified(code: "BAD_REQUEST")),
    .init("an upsert without upsert_on", .post, "/crm/v2/contacts/_upsert", hubspotCustomer, body: #"{"record":{"first_name":"A"}}"#, 400,
          .unified(code: "BAD_REQUEST")),
    .init("an upsert on a key the provider cannot match", .post, "/crm/v2/contacts/_upsert", hubspotCustomer,
          body: #"{"record":{"first_name":"A"},"upsert_on":{"key":"phone","values":["1"]}}"#, 400, .unified(code: "BAD_REQUEST")),
    .init("an update without fields", .patch, "/crm/v2/contacts/123", hubspotCustomer, body: #"{"record":{}}"#, 400,
          .unified(code: "BAD_REQUEST")),
    .init("a customer without an installation", .post, "/crm/v2/contacts",
          hubspotCustomer.merging(["x-customer-id": "nobody"]) { $1 }, body: #"{"record":{"first_name":"A"}}"#, 404, .unified(code: "NOT_FOUND")),
    .init("a pass-through without a path", .post, "/actions/v2/passthrough", hubspotCustomer, body: #"{"method":"GET"}"#, 400,
          .unified(code: "BAD_REQUEST")),
    .init("a pass-through with an unknown method", .post, "/actions/v2/passthrough", hubspotCustomer, body: #"{"method":"TRACE","path":"/x"}"#,
          400, .unified(code: "BAD_REQUEST")),
    .init("a pass-through that leaves the host", .post, "/actions/v2/passthrough", hubspotCustomer,
          body: #"{"method":"GET","path":"/../../etc"}"#, 400, .unified(code: "BAD_REQUEST")),
]

/// The action catalog's and the action instances' refusals.
let actionRefusals: [Refusal] = [
    .init("no API key", .get, "/api/v2/integration-schema/hubspot/actions", ["linked_account_id": "customer-1"], 401,
          .catalog(parameter: nil)),
    .init("an app that is not served", .get, "/api/v2/integration-schema/zoho/actions", catalogAccount, 404, .catalog(parameter: nil)),
    .init("no linked account", .get, "/api/v2/integration-schema/hubspot/actions", key, 400, .catalog(parameter: "linked_account_id")),
    .init("a linked account without an installation", .get, "/api/v2/integration-schema/hubspot/actions",
          key.merging(["linked_account_id": "nobody"]) { $1 }, 404, .catalog(parameter: nil)),
    .init("an unknown action", .get, "/api/v2/integration-schema/hubspot/actions/fly", catalogAccount, 404, .catalog(parameter: nil)),
    .init("executing with a body that is not JSON", .post, "/api/v2/integration-schema/hubspot/actions/create_contact/execute", catalogAccount,
          body: "{not json", 400, .catalog(parameter: "body")),
    .init("no customer token", .get, "/connections/write-to-hubspot/actions", 401, .instance(type: "unauthorized")),
    .init("a token that is not a JWT", .get, "/connections/write-to-hubspot/actions", ["Authorization": "Bearer nope"], 401,
          .instance(type: "unauthorized")),
    .init("an API key instead of a token", .get, "/connections/write-to-hubspot/actions", key, 401, .instance(type: "unauthorized")),
    .init("a connection the customer does not have", .get, "/connections/write-to-zoho/actions", customerToken, 404,
          .instance(type: "not_found")),
    .init("an action not in the catalog", .get, "/connections/write-to-hubspot/actions/fly", customerToken, 404, .instance(type: "not_found")),
    .init("a customization that is not JSON", .patch, "/connections/write-to-hubspot/actions/fly", customerToken, body: "{not json", 404,
          .instance(type: "not_found")),
    .init("archiving an unknown action", .delete, "/connections/write-to-hubspot/actions/fly", customerToken, 404, .instance(type: "not_found")),
    .init("resetting an action of an unknown connection", .post, "/connections/nope/actions/create-contact/reset", customerToken, 404,
          .instance(type: "not_found")),
    .init("setting up an action without a token", .post, "/connections/write-to-hubspot/actions/create-contact/setup", 401,
          .instance(type: "unauthorized")),
    .init("running an unknown action", .post, "/connections/write-to-hubspot/actions/fly/run", customerToken, body: "{}", 404,
          .instance(type: "not_found")),
]

/// The console's refusals: pages and redirects, not JSON. Without a session every page sends the browser
/// to sign in; with one, what is wrong is a page with its status.
let consoleRefusals: [Refusal] = {
    let operation = "/console/operations/\(unknownId)"
    let toSignIn = Shape.redirect("/console/sign-in")
    return [
        .init("the console's door", .get, "/console", 303, .redirect("/console/operations")),
        .init("the sign-in page with a forged session", .get, "/console/sign-in", ["Cookie": "writeback_console=forged"], 200, .page),
        .init("signing in without a key", .post, "/console/sign-in", body: "key=", 400, .page),
        .init("signing in with a key of no project", .post, "/console/sign-in", body: "key=wrong", 401, .page),
        .init("signing in from another site", .post, "/console/sign-in", ["Origin": "http://elsewhere.example"], body: "key=x", 403, .page),
        .init("signing out without a session", .post, "/console/sign-out", body: "csrf=x", 303, toSignIn),
        .init("the operations without a session", .get, "/console/operations", 303, toSignIn),
        .init("the operations with a forged session", .get, "/console/operations", ["Cookie": "writeback_console=wb1.forged"], 303, toSignIn),
        .init("an unknown status filter", .get, "/console/operations?status=sideways", consoleSession, 400, .page),
        .init("a time filter that is no time", .get, "/console/operations?from=yesterday", consoleSession, 400, .page),
        .init("an operation without a session", .get, operation, 303, toSignIn),
        .init("an unknown operation", .get, operation, consoleSession, 404, .page),
        .init("failed rows without a session", .get, "\(operation)/failed-records", 303, toSignIn),
        .init("sending again without the form's token", .post, "\(operation)/resend", consoleSession, body: "csrf=wrong", 403, .page),
        .init("sending again without a session", .post, "\(operation)/resend", body: "csrf=x", 303, toSignIn),
        .init("the connections without a session", .get, "/console/connections", 303, toSignIn),
        .init("the installations without a session", .get, "/console/installations", 303, toSignIn),
        .init("the integrations without a session", .get, "/console/integrations", 303, toSignIn),
    ]
}()

@Suite("API routes in process", .serialized)
struct RouteTests {
    func send(_ refusal: Refusal) async throws -> RouteHarness.Answer {
        let harness = try await RouteHarness.shared.value
        var headers = HTTPFields()
        for (name, value) in refusal.headers {
            headers[HTTPField.Name(name)!] = value.replacingOccurrences(of: "{token}", with: harness.customerToken)
                .replacingOccurrences(of: "{session}", with: harness.consoleCookie)
        }
        if refusal.body != nil { headers[.contentType] = "application/json" }
        return try await harness.send(refusal.method, refusal.path, headers: headers, body: refusal.body)
    }

    func check(_ refusal: Refusal) async throws {
        let answer = try await send(refusal)
        #expect(answer.status == refusal.status, "answered \(answer.status): \(answer.json.map { "\($0)" } ?? "no JSON")")
        switch refusal.shape {
        case .page:
            #expect(answer.contentType == "text/html; charset=utf-8")
            return
        case .redirect(let location):
            #expect(answer.location == location)
            return
        default: break
        }
        let json = try #require(answer.json, "the answer is not JSON")
        switch refusal.shape {
        case .problem(let issue):
            #expect(answer.contentType == "application/problem+json")
            #expect(json["status"] == .number(Double(refusal.status)) && json["title"]?.stringValue?.isEmpty == false)
            #expect(json["detail"]?.stringValue?.isEmpty == false)
            if let issue {
                let names = (json["issues"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
                #expect(names.contains(issue), "issues name \(names)")
            }
        case .unified(let code):
            let first = try #require(json["errors"]?.arrayValue?.first, "no errors in \(json)")
            #expect(first["status"] == .string(String(refusal.status)) && first["code"] == .string(code))
            #expect(first["meta"]?["origin"] == "supaglue" && first["detail"]?.stringValue?.isEmpty == false)
        case .catalog(let parameter):
            #expect(json["node_status"] == "Failed" && json["message"]?.stringValue?.isEmpty == false)
            if let parameter {
                let names = (json["errors"]?.arrayValue ?? []).compactMap { $0["parameter"]?.stringValue }
                #expect(names.contains(parameter), "errors name \(names)")
            }
        case .instance(let type):
            #expect(json["type"] == .string(type) && json["message"]?.stringValue?.isEmpty == false)
        case .page, .redirect: break
        }
    }

    @Test("the Write API refuses bad writes in its problem shape, naming what is wrong", arguments: writeRefusals)
    func write(_ refusal: Refusal) async throws { try await check(refusal) }

    @Test("the control API refuses bad requests in its problem shape, naming what is wrong", arguments: controlRefusals)
    func control(_ refusal: Refusal) async throws { try await check(refusal) }

    @Test("the unified CRM and pass-through APIs refuse in the unified error shape", arguments: unifiedRefusals)
    func unified(_ refusal: Refusal) async throws { try await check(refusal) }

    @Test("the action catalog and the action instances refuse in their own shapes", arguments: actionRefusals)
    func actions(_ refusal: Refusal) async throws { try await check(refusal) }

    @Test("the console refuses with pages and sends a browser without a session to sign in", arguments: consoleRefusals)
    func console(_ refusal: Refusal) async throws { try await check(refusal) }

    @Test("no refused write is published; the first write request out is the one accepted after them")
    func nothingPublished() async throws {
        let harness = try await RouteHarness.shared.value
        for refusal in writeRefusals + unifiedRefusals.filter({ $0.path.hasPrefix("/crm") }) {
            _ = try await send(refusal)
        }
        let accepted = try await harness.send(
            .post, "\(sf)/objects/contact", headers: [.init("X-Api-Key")!: RouteHarness.apiKey, .contentType: "application/json"],
            body: #"{"groupRef":"customer-1","mode":"asynchronous","record":{"LastName":"Potter"}}"#)
        #expect(accepted.status == 200)
        let operationId = try #require(accepted.json?["operationId"]?.stringValue)
        var messages = harness.published.messages.makeAsyncIterator()
        let first = try #require(await messages.next(), "the accepted write was not published")
        let request = try JSONCoding.decode(WriteRequestMessage.self, from: first.value)
        #expect(request.operationId == operationId)
    }

    @Test("every route the api serves has refusals here")
    func everyRouteCovered() async throws {
        let harness = try await RouteHarness.shared.value
        let cases = writeRefusals + controlRefusals + unifiedRefusals + actionRefusals + consoleRefusals
        func matches(_ pattern: String, _ path: String) -> Bool {
            let want = pattern.split(separator: "/"), have = path.split(separator: "?")[0].split(separator: "/")
            return want.count == have.count && zip(want, have).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        }
        // Neither the health route nor the document takes a key or input: they refuse nothing.
        for route in harness.routeList where route.path != "/health" && route.path != "/openapi.json" {
            #expect(cases.contains { $0.method.rawValue == route.method && matches(route.path, $0.path) },
                    "\(route.method) \(route.path) has no refusal case")
        }
    }

    @Test("the OpenAPI document states every route the api serves, and every path it states is routed")
    func openAPIDocumentCoversTheRouter() async throws {
        let harness = try await RouteHarness.shared.value
        let answer = try await harness.send(.get, "/openapi.json")
        #expect(answer.status == 200 && answer.contentType == "application/json")
        let paths = try #require(answer.json?["paths"]?.objectValue, "the document has no paths")
        // Parameters are compared by place, not name: the document uses the peers' names (`projectIdOrName`).
        func shape(_ path: String) -> String {
            path.split(separator: "/").map { $0.hasPrefix("{") || $0.hasPrefix(":") ? "{}" : String($0) }.joined(separator: "/")
        }
        let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]
        let documented = Set(paths.flatMap { path, item in
            (item.objectValue ?? [:]).keys.filter(methods.contains).map { "\($0.uppercased()) \(shape(path))" }
        })
        let routed = Set(harness.routeList.map { "\($0.method) \(shape($0.path))" })
        #expect(routed.count >= 60, "the router lists \(routed.count) routes")
        #expect(routed.subtracting(documented).isEmpty, "routed but not in the document: \(routed.subtracting(documented).sorted())")
        #expect(documented.subtracting(routed).isEmpty, "in the document but not routed: \(documented.subtracting(routed).sorted())")
    }

    @Test("an operation sent again from the console is always the same new operation, a UUID of version 8")
    func resendId() {
        let old = "01a24cbe-532e-70d9-b649-a4beda0922c9"
        let resent = ConsoleController.resendId(of: old)
        #expect(resent == ConsoleController.resendId(of: old) && resent != ConsoleController.resendId(of: unknownId))
        #expect(UUID(uuidString: resent) != nil && resent == resent.lowercased())
        #expect(Array(resent)[14] == "8" && "89ab".contains(Array(resent)[19]), "\(resent)")
    }

    @Test("the health route answers without a key")
    func health() async throws {
        let answer = try await RouteHarness.shared.value.send(.get, "/health")
        #expect(answer.status == 200 && answer.json?["status"] == "ok")
    }
}
