import Foundation
import Shared
import Testing

extension OneStack {
    /// The unified CRM API: one request in the common schema, answered the same way whichever CRM the
    /// customer uses, each answer checked against the published crm-v2 OpenAPI document.
    @Suite("Unified CRM API", .serialized)
    struct UnifiedCRMTests {
        let spec = try! OpenAPISchema(oracle: "supaglue/crm-v2.openapi.json")

        func crm(_ method: String, _ path: String, provider: String, _ body: JSONValue, customer: String = TestStack.groupRef)
            async throws -> TestStack.Answer
        {
            let stack = try TestStack.stack
            return try await stack.call(method, "\(stack.apiURL)/crm/v2\(path)", body: try JSONCoding.encodeString(body), headers: [
                ("x-api-key", TestStack.apiKey), ("x-customer-id", customer), ("x-provider-name", provider),
                ("Content-Type", "application/json"),
            ])
        }

        /// The answer, after checking that the spec documents it and its body fits.
        func conforming(_ answer: TestStack.Answer, _ method: String, _ template: String) -> TestStack.Answer {
            let problems = spec.problems(answer.body, path: template, method: method, status: answer.status)
            #expect(problems.isEmpty, "\(method) \(template) → \(answer.status) \(answer.body): \(problems)")
            return answer
        }

        /// The record as the provider holds it, through the provider's API.
        func stored(_ provider: String, _ object: String, _ id: String) async throws -> JSONValue {
            let stack = try TestStack.stack
            if provider == "salesforce" { return try await stack.salesforceRecord(object, id).body }
            return try await stack.hubspotObject(object, id).body["properties"] ?? .null
        }

        @Test("create, update and upsert of a contact are answered alike for Salesforce and HubSpot, in each CRM's own fields")
        func contacts() async throws {
            var shapes: [String: [String]] = [:]
            for (provider, object) in [("salesforce", "Contact"), ("hubspot", "contacts")] {
                let email = "ada.\(provider)@example.com"
                let created = conforming(try await crm("POST", "/contacts", provider: provider, ["record": [
                    "first_name": "Ada", "last_name": "Lovelace",
                    "email_addresses": [["email_address": .string(email), "email_address_type": "work"]],
                    "phone_numbers": [["phone_number": "+44 20 7946 0000", "phone_number_type": "primary"]],
                    "addresses": [["address_type": "mailing", "street_1": "12 St James's Square", "street_2": .null, "city": "London",
                                   "state": .null, "postal_code": "SW1Y 4LB", "country": "UK"]],
                ]]), "POST", "/contacts")
                try #require(created.status == 201, "\(created.body)")
                let id = try #require(created.body.at("record.id")?.stringValue)
                #expect(created.headers["x-operation-id"] != nil)
                let record = try await stored(provider, object, id)
                if provider == "salesforce" {
                    #expect(record["FirstName"] == "Ada" && record["LastName"] == "Lovelace" && record["Email"] == .string(email))
                    #expect(record["Phone"] == "+44 20 7946 0000" && record["MailingCity"] == "London" && record["MailingPostalCode"] == "SW1Y 4LB")
                } else {
                    #expect(record["firstname"] == "Ada" && record["lastname"] == "Lovelace" && record["email"] == .string(email))
                    #expect(record["phone"] == "+44 20 7946 0000" && record["city"] == "London" && record["zip"] == "SW1Y 4LB")
                }

                let updated = conforming(try await crm("PATCH", "/contacts/\(id)", provider: provider, ["record": ["last_name": "King"]]),
                                         "PATCH", "/contacts/{contact_id}")
                #expect(updated.status == 200, "\(updated.body)")
                #expect(try await stored(provider, object, id)[provider == "salesforce" ? "LastName" : "lastname"] == "King")

                // The same email again: the record found is updated, not duplicated.
                let upserted = conforming(try await crm("POST", "/contacts/_upsert", provider: provider, [
                    "record": ["first_name": "Augusta"], "upsert_on": ["key": "email", "values": [.string(email)]],
                ]), "POST", "/contacts/_upsert")
                #expect(upserted.status == 201, "\(upserted.body)")
                #expect(upserted.body.at("record.id")?.stringValue == id)
                #expect(try await stored(provider, object, id)[provider == "salesforce" ? "FirstName" : "firstname"] == "Augusta")

                // An email nobody has: a new record, holding that email.
                let fresh = "babbage.\(provider)@example.com"
                let inserted = conforming(try await crm("POST", "/contacts/_upsert", provider: provider, [
                    "model": ["last_name": "Babbage"], "upsert_on": ["key": "email", "values": [.string(fresh)]],
                ]), "POST", "/contacts/_upsert")
                #expect(inserted.status == 201, "\(inserted.body)")
                let newId = try #require(inserted.body.at("record.id")?.stringValue)
                #expect(newId != id)
                #expect(try await stored(provider, object, newId)[provider == "salesforce" ? "Email" : "email"] == .string(fresh))

                shapes[provider] = [created, updated, upserted, inserted].map { "\($0.status) " + ($0.body.objectValue?.keys.sorted() ?? []).joined(separator: ",") }
            }
            #expect(shapes["salesforce"] == shapes["hubspot"], "\(shapes)")
        }

        @Test("accounts and opportunities map to each CRM's objects; a value the CRM has no field for comes back as a warning")
        func accountsAndWarnings() async throws {
            for (provider, object) in [("salesforce", "Account"), ("hubspot", "companies")] {
                let created = conforming(try await crm("POST", "/accounts", provider: provider, ["record": [
                    "name": "Analytical Engines", "website": "https://engines.example", "number_of_employees": 12,
                    "lifecycle_stage": "customer", "industry": "Machinery",
                ]]), "POST", "/accounts")
                try #require(created.status == 201, "\(created.body)")
                let id = try #require(created.body.at("record.id")?.stringValue)
                let record = try await stored(provider, object, id)
                let warnings = created.body["warnings"]?.arrayValue ?? []
                if provider == "salesforce" {
                    #expect(record["Name"] == "Analytical Engines" && record["NumberOfEmployees"] == 12 && record["Website"] == "https://engines.example")
                    #expect(warnings.count == 1 && warnings[0]["detail"]?.stringValue?.hasPrefix("lifecycle_stage") == true, "\(warnings)")
                } else {
                    #expect(record["name"] == "Analytical Engines" && record["numberofemployees"] == "12" && record["lifecyclestage"] == "customer")
                    #expect(warnings.isEmpty, "\(warnings)")
                }
                let again = conforming(try await crm("POST", "/accounts/_upsert", provider: provider, [
                    "record": ["industry": "Computing"], "upsert_on": ["key": "website", "values": ["https://engines.example"]],
                ]), "POST", "/accounts/_upsert")
                #expect(again.status == 201 && again.body.at("record.id")?.stringValue == id, "\(again.body)")
            }
            let deal = conforming(try await crm("POST", "/opportunities", provider: "hubspot", ["record": [
                "name": "Difference Engine", "amount": 17000, "stage": "appointmentscheduled", "pipeline": "default",
                "close_date": "2026-12-01T00:00:00Z",
            ]]), "POST", "/opportunities")
            #expect(deal.status == 201, "\(deal.body)")
            let opportunity = conforming(try await crm("POST", "/opportunities", provider: "salesforce", ["record": [
                "name": "Difference Engine", "amount": 17000, "stage": "Prospecting", "close_date": "2026-12-01T00:00:00Z",
            ]]), "POST", "/opportunities")
            try #require(opportunity.status == 201, "\(opportunity.body)")
            let stored = try await stored("salesforce", "Opportunity", try #require(opportunity.body.at("record.id")?.stringValue))
            #expect(stored["StageName"] == "Prospecting" && stored["CloseDate"] == "2026-12-01")
        }

        @Test("bad input, an unknown customer and a provider's refusal are answered as unified errors with the spec's statuses")
        func errors() async throws {
            let stack = try TestStack.stack
            let before = try await stack.providerCalls().count
            let bad = conforming(try await crm("POST", "/contacts", provider: "salesforce", ["record": [
                "first_name": 7, "nickname": "Ada", "email_addresses": [["email_address": "x@y.z", "email_address_type": "home"]],
            ]]), "POST", "/contacts")
            #expect(bad.status == 400)
            let errors = bad.body["errors"]?.arrayValue ?? []
            #expect(errors.count == 3, "\(bad.body)")
            #expect(errors.allSatisfy { $0["status"] == "400" && $0["code"] == "BAD_REQUEST" && $0.at("meta.origin") != nil && $0["id"] != nil })
            #expect(errors.contains { $0["title"]?.stringValue?.hasPrefix("record.nickname") == true })

            let noRecord = conforming(try await crm("POST", "/contacts", provider: "hubspot", ["name": "x"]), "POST", "/contacts")
            #expect(noRecord.status == 400)
            let badKey = conforming(try await crm("POST", "/accounts/_upsert", provider: "salesforce", [
                "record": ["name": "x"], "upsert_on": ["key": "domain", "values": ["x.example"]],
            ]), "POST", "/accounts/_upsert")
            #expect(badKey.status == 400 && badKey.body.at("errors.0.detail")?.stringValue?.contains("website") == true, "\(badKey.body)")
            let stranger = conforming(try await crm("POST", "/contacts", provider: "salesforce", ["record": ["last_name": "x"]],
                                                    customer: "nobody"), "POST", "/contacts")
            #expect(stranger.status == 404 && stranger.body.at("errors.0.code") == "NOT_FOUND")
            let leads = conforming(try await crm("POST", "/leads", provider: "hubspot", ["record": ["last_name": "x"]]), "POST", "/leads")
            #expect(leads.status == 501 && leads.body.at("errors.0.code") == "NOT_IMPLEMENTED")
            let noProvider = try await stack.call("POST", "\(stack.apiURL)/crm/v2/contacts", body: #"{"record":{}}"#, headers: [
                ("x-api-key", TestStack.apiKey), ("x-customer-id", TestStack.groupRef), ("Content-Type", "application/json"),
            ])
            #expect(noProvider.status == 400 && noProvider.body.at("errors.0.meta.source") == "header:x-provider-name", "\(noProvider.body)")
            let noKey = try await stack.call("POST", "\(stack.apiURL)/crm/v2/contacts", body: #"{"record":{}}"#, headers: [
                ("x-customer-id", TestStack.groupRef), ("x-provider-name", "hubspot"),
            ])
            #expect(conforming(noKey, "POST", "/contacts").status == 401)
            #expect(try await stack.providerCalls().count == before, "refused requests reached a provider")

            // The providers refuse: a Salesforce contact needs a last name; HubSpot has no such property.
            let refused = conforming(try await crm("POST", "/contacts", provider: "salesforce", ["record": ["first_name": "Nameless"]]),
                                     "POST", "/contacts")
            #expect(refused.status == 499, "\(refused.body)")
            #expect(refused.body.at("errors.0.code") == "REMOTE_PROVIDER_ERROR" && refused.body.at("errors.0.meta.origin") == "remote-provider")
            #expect(refused.body.at("errors.0.meta.cause.code") == 400)
            #expect(refused.body.at("errors.0.meta.cause.body.0.errorCode") == "REQUIRED_FIELD_MISSING", "\(refused.body)")
            let unknown = conforming(try await crm("POST", "/contacts", provider: "hubspot", [
                "record": ["last_name": "x", "custom_fields": ["favourite_engine": "analytical"]],
            ]), "POST", "/contacts")
            #expect(unknown.status == 499 && unknown.body.at("errors.0.detail")?.stringValue?.contains("favourite_engine") == true, "\(unknown.body)")
        }
    }
}
