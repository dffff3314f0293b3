import Hummingbird
import Shared

/// What the providers say about their objects and limits: Salesforce `describe` and `/limits/`,
/// HubSpot's properties.
extension Sandbox {
    func addMetadataRoutes(to router: Router<BasicRequestContext>) {
        router.get("services/data/:version/sobjects/:object/describe") { request, context in
            try await self.gated(request, provider: "salesforce") { org, headers in
                let name = context.parameters.get("object") ?? ""
                let found = self.state.withLock { state in
                    state.salesforceOrg = org
                    return state.salesforceObject(name)
                }
                guard let object = found else {
                    return jsonResponse(404, [SalesforceError(message: "The requested resource does not exist", errorCode: "NOT_FOUND")],
                                        headers: headers)
                }
                return jsonResponse(200, Self.describe(name, object), headers: headers)
            }
        }
        router.get("services/data/:version/limits") { request, _ in
            try await self.gated(request, provider: "salesforce") { org, headers in
                let (max, used) = self.withOrg("salesforce", org) { ($0.limits.dailyMax ?? 0, $0.dailyUsed) }
                let limits: JSONValue = [
                    "DailyApiRequests": ["Max": .number(Double(max)), "Remaining": .number(Double(Swift.max(0, max - used)))],
                    "DailyBulkV2QueryJobs": ["Max": 10000, "Remaining": 10000],
                ]
                return jsonResponse(200, limits, headers: headers)
            }
        }
        router.get("crm/v3/properties/:type") { request, context in
            try await self.gated(request, provider: "hubspot") { _, headers in
                let type = SandboxSchema.hubspotType(context.parameters.get("type") ?? "") ?? ""
                guard let names = SandboxSchema.hubspot[type] else {
                    return jsonResponse(400, HubSpotError(message: "Unable to infer object type from: \(type)", category: "VALIDATION_ERROR"),
                                        headers: headers)
                }
                // HubSpot's own properties that only it sets come with every type, read-only.
                let readOnly: Set<String> = ["hs_object_id", "createdate", "lastmodifieddate"]
                let results: [JSONValue] = names.union(readOnly).sorted().map { name in
                    let (kind, fieldType) = name == "hs_object_id" ? ("number", "number") : Self.propertyType(name)
                    return [
                        "name": .string(name), "label": .string(name.capitalized), "type": .string(kind), "description": "",
                        "fieldType": .string(fieldType), "groupName": .string("\(type.dropLast())information"),
                        "options": [], "hasUniqueValue": .bool(SandboxSchema.hubspotUnique[type]?.contains(name) == true), "calculated": false,
                        "hidden": false, "hubspotDefined": true,
                        "modificationMetadata": ["archivable": true, "readOnlyDefinition": true,
                                                 "readOnlyValue": .bool(readOnly.contains(name))],
                    ]
                }
                return jsonResponse(200, ["results": JSONValue.array(results)], headers: headers)
            }
        }
    }

    /// A describe result in Salesforce's shape, with the sandbox's fields.
    static func describe(_ name: String, _ object: SandboxSchema.SalesforceObject) -> JSONValue {
        let custom = name.hasSuffix("__c")
        var fields: [JSONValue] = [field("Id", type: "id", createable: false, updateable: false, nillable: false, defaulted: true)]
        for field in object.externalIds.sorted() {
            fields.append(Self.field(field, type: "string", createable: true, updateable: true, nillable: true, defaulted: false,
                                     externalId: true))
        }
        for field in (object.fields.union(custom ? ["Name"] : [])).subtracting(object.externalIds).sorted() {
            let type = field.hasSuffix("Id") ? "reference" : field.hasPrefix("Has") || field.hasPrefix("DoNot") ? "boolean"
                : field.contains("Email") ? "email"
                : field.contains("Phone") || field == "Fax" ? "phone" : field.hasSuffix("Date") || field == "Birthdate" ? "date"
                : ["Amount", "AnnualRevenue", "Probability"].contains(field) ? "currency"
                : field == "NumberOfEmployees" ? "int" : "string"
            fields.append(Self.field(field, type: type, createable: true, updateable: true,
                                     nillable: !object.required.contains(field) && type != "boolean", defaulted: type == "boolean"))
        }
        return [
            "name": .string(name), "label": .string(name), "keyPrefix": .string(object.keyPrefix), "custom": .bool(custom),
            "createable": true, "updateable": true, "deletable": true, "queryable": true, "fields": .array(fields),
        ]
    }

    private static func field(
        _ name: String, type: String, createable: Bool, updateable: Bool, nillable: Bool, defaulted: Bool, externalId: Bool = false
    ) -> JSONValue {
        [
            "name": .string(name), "label": .string(name), "type": .string(type), "length": .number(type == "string" ? 255 : 0),
            "createable": .bool(createable), "updateable": .bool(updateable), "nillable": .bool(nillable),
            "defaultedOnCreate": .bool(defaulted), "externalId": .bool(externalId), "idLookup": .bool(name == "Id" || externalId),
            "unique": .bool(externalId),
            "custom": .bool(name.hasSuffix("__c")), "picklistValues": [],
            "referenceTo": type == "reference" ? [.string(String(name.dropLast(2)))] : [],
        ]
    }

    private static func propertyType(_ name: String) -> (String, String) {
        if name.hasSuffix("date") { return ("datetime", "date") }
        if ["amount", "annualrevenue", "numberofemployees"].contains(name) { return ("number", "number") }
        if name == "phone" || name == "mobilephone" { return ("string", "phonenumber") }
        return ("string", "text")
    }
}
