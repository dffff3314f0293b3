/// The objects and fields the simulated providers know, so that they reject what the real ones reject.
enum SandboxSchema {
    struct SalesforceObject {
        let keyPrefix: String
        let fields: Set<String>
        let required: [String]
        /// External ID fields (unique, case-insensitive): what upserts match on and DUPLICATE_VALUE guards.
        var externalIds: Set<String> = ["External_Id__c"]
        /// Declared by an org's schema: only its fields exist (otherwise any `__c` field does).
        var strict = false
    }

    /// What an org declares of one object: custom fields on a standard object, or a custom object.
    struct DeclaredObject: Codable, Sendable, Equatable {
        var fields: [String]
        var required: [String]?
        var externalIds: [String]?
    }

    /// An object as an org with a declared schema has it: standard objects with the declared fields
    /// added, and the declared custom objects; nothing else custom.
    static func salesforceObject(_ name: String, declared: [String: DeclaredObject]) -> SalesforceObject? {
        let extra = declared[name]
        let externalIds = Set(extra?.externalIds ?? [])
        if let standard = salesforce[name] {
            return SalesforceObject(
                keyPrefix: standard.keyPrefix, fields: standard.fields.union(extra?.fields ?? []).union(externalIds),
                required: standard.required + (extra?.required ?? []), externalIds: standard.externalIds.union(externalIds),
                strict: true)
        }
        guard let extra, name.hasSuffix("__c") else { return nil }
        let index = declared.keys.sorted().firstIndex(of: name) ?? 0
        return SalesforceObject(
            keyPrefix: "a0" + String(index % 36, radix: 36, uppercase: true), fields: Set(extra.fields + ["Name"]).union(externalIds),
            required: extra.required ?? [], externalIds: externalIds, strict: true)
    }

    /// The API versions the simulated org serves (`v50.0` … `v62.0`).
    static func salesforceVersionServed(_ version: String) -> Bool {
        guard version.hasPrefix("v"), let number = Double(version.dropFirst()) else { return false }
        return number >= 50 && number <= 62
    }

    static let salesforceCommon: Set<String> = ["OwnerId", "Description", "Name"]

    static let salesforce: [String: SalesforceObject] = [
        "Contact": SalesforceObject(
            keyPrefix: "003",
            fields: ["FirstName", "LastName", "Salutation", "Email", "Phone", "MobilePhone", "Title", "Department",
                     "AccountId", "LeadSource", "Birthdate", "MailingStreet", "MailingCity", "MailingState",
                     "MailingPostalCode", "MailingCountry", "HomePhone", "Fax", "AssistantName", "ReportsToId",
                     "HasOptedOutOfEmail", "DoNotCall", "OtherStreet", "OtherCity", "OtherState", "OtherPostalCode",
                     "OtherCountry", "OtherPhone"],
            required: ["LastName"]),
        "Account": SalesforceObject(
            keyPrefix: "001",
            fields: ["Name", "Type", "Industry", "Phone", "Website", "AnnualRevenue", "NumberOfEmployees",
                     "BillingStreet", "BillingCity", "BillingState", "BillingPostalCode", "BillingCountry",
                     "ParentId", "AccountNumber", "Rating", "Fax", "ShippingStreet", "ShippingCity", "ShippingState",
                     "ShippingPostalCode", "ShippingCountry"],
            required: ["Name"]),
        "Lead": SalesforceObject(
            keyPrefix: "00Q",
            fields: ["FirstName", "LastName", "Company", "Email", "Phone", "Title", "Status", "LeadSource",
                     "Industry", "Rating", "Street", "City", "State", "PostalCode", "Country", "Website", "MobilePhone"],
            required: ["LastName", "Company"]),
        "Opportunity": SalesforceObject(
            keyPrefix: "006",
            fields: ["Name", "StageName", "CloseDate", "Amount", "AccountId", "Probability", "Type", "LeadSource",
                     "NextStep"],
            required: ["Name", "StageName", "CloseDate"]),
    ]

    /// The sObject definition for a name, standard or custom (`…__c`), or nil if Salesforce has none.
    static func salesforceObject(_ name: String) -> SalesforceObject? {
        if let known = salesforce[name] { return known }
        if name.hasSuffix("__c") { return SalesforceObject(keyPrefix: "a00", fields: [], required: []) }
        return nil
    }

    static func salesforceFieldExists(_ field: String, on object: SalesforceObject) -> Bool {
        if object.fields.contains(field) || salesforceCommon.contains(field) || object.externalIds.contains(field) { return true }
        return !object.strict && (field.hasSuffix("__c") || object.keyPrefix == "a00")
    }

    static let hubspot: [String: Set<String>] = [
        "contacts": ["email", "firstname", "lastname", "phone", "mobilephone", "company", "website", "jobtitle",
                     "lifecyclestage", "hs_lead_status", "city", "state", "country", "zip", "address",
                     "hubspot_owner_id", "industry", "annualrevenue", "notes_last_updated", "fax", "associatedcompanyid"],
        "companies": ["name", "domain", "industry", "phone", "city", "state", "country", "numberofemployees",
                      "annualrevenue", "description", "lifecyclestage", "website", "hubspot_owner_id", "address", "zip"],
        "deals": ["dealname", "amount", "dealstage", "pipeline", "closedate", "hubspot_owner_id", "dealtype",
                  "description"],
        "p_pets": ["name", "species", "pet_id", "age", "hubspot_owner_id"],
        "tickets": ["subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority",
                    "hubspot_owner_id"],
    ]
}
