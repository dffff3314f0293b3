import Shared

extension ProviderProfile {
    static let pipedrive = ProviderProfile(
        provider: .pipedrive, displayName: "Pipedrive", recordIdField: "id", fieldNamesIgnoreCase: false,
        customFieldHint: "custom fields are named by their 40-character keys", pagesWithCursor: true,
        objectAliases: aliases([("contact", "persons"), ("person", "persons"), ("account", "organizations"),
                                ("organization", "organizations"), ("opportunity", "deals")]),
        knownObjects: ["leads", "activities", "products", "notes"],
        objectPatterns: [],
        objectAdvice: "use persons, organizations or deals (or contact, account, opportunity)",
        catalogObjects: [CatalogObject("person", "persons", "persons"), CatalogObject("organization", "organizations", "organizations"),
                         CatalogObject("deal", "deals", "deals")],
        unified: [
            .contacts: UnifiedMapping(
                providerName: "Pipedrive", object: "persons", fields: ["owner_id": "owner_id", "account_id": "org_id"],
                email: "email", phones: [("primary", "phone")], upsertFields: [("email", "email")],
                joined: [(["first_name", "last_name"], "name")]),
            .accounts: UnifiedMapping(
                providerName: "Pipedrive", object: "organizations", fields: ["name": "name", "owner_id": "owner_id"]),
            .opportunities: UnifiedMapping(
                providerName: "Pipedrive", object: "deals",
                fields: ["name": "title", "amount": "value", "stage": "stage_id", "account_id": "org_id", "owner_id": "owner_id",
                         "close_date": "expected_close_date"],
                dateFields: ["close_date"]),
        ])
}

/// Pipedrive's item types: the fields each has of its own (others are custom fields), where its fields
/// are listed, and its name.
enum PipedriveProfile {
    static let ownFields: [String: Set<String>] = [
        "persons": ["name", "owner_id", "org_id", "emails", "phones", "visible_to", "label_ids", "marketing_status", "add_time",
                    "update_time"],
        "organizations": ["name", "owner_id", "address", "visible_to", "label_ids", "add_time", "update_time"],
        "deals": ["title", "value", "currency", "stage_id", "pipeline_id", "person_id", "org_id", "status", "owner_id",
                  "expected_close_date", "probability", "visible_to", "label_ids", "add_time", "update_time"],
    ]
    static let fieldsPaths = ["persons": "personFields", "organizations": "organizationFields", "deals": "dealFields"]
    static let displayNames = ["persons": "Person", "organizations": "Organization", "deals": "Deal"]
}
