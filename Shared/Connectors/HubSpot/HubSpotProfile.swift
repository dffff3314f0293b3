import Shared

extension ProviderProfile {
    static let hubspot = ProviderProfile(
        provider: .hubspot, displayName: "HubSpot", recordIdField: "hs_object_id", fieldNamesIgnoreCase: false,
        customFieldHint: nil, pagesWithCursor: true,
        objectAliases: aliases([("contact", "contacts"), ("account", "companies"), ("lead", "leads"), ("opportunity", "deals"),
                                ("ticket", "tickets"), ("user", "users")]),
        knownObjects: ["note", "notes", "call", "calls", "email", "emails", "meeting", "meetings", "task", "tasks", "product",
                       "products", "line_item", "line_items", "quote", "quotes"],
        objectPatterns: [#"^(p_[a-z0-9_]+|\d+-\d+)$"#],
        objectAdvice: "use a CRM object such as contacts, a custom object such as p_pets, or a type id such as 2-1234",
        catalogObjects: [CatalogObject("contact", "contacts", "contacts"), CatalogObject("company", "companies", "companies")],
        unified: [
            .contacts: UnifiedMapping(
                providerName: "HubSpot", object: "contacts",
                fields: ["first_name": "firstname", "last_name": "lastname", "account_id": "associatedcompanyid",
                         "owner_id": "hubspot_owner_id", "lifecycle_stage": "lifecyclestage"],
                email: "email", phones: [("primary", "phone"), ("mobile", "mobilephone"), ("fax", "fax")],
                addresses: addresses, addressParts: addressParts, upsertFields: [("email", "email")]),
            .accounts: UnifiedMapping(
                providerName: "HubSpot", object: "companies",
                fields: ["name": "name", "description": "description", "industry": "industry",
                         "number_of_employees": "numberofemployees", "website": "website", "owner_id": "hubspot_owner_id",
                         "lifecycle_stage": "lifecyclestage"],
                email: "email", phones: [("primary", "phone")], addresses: addresses, addressParts: addressParts,
                upsertFields: [("domain", "domain"), ("website", "website")]),
            .opportunities: UnifiedMapping(
                providerName: "HubSpot", object: "deals",
                fields: ["amount": "amount", "close_date": "closedate", "description": "description", "name": "dealname",
                         "stage": "dealstage", "pipeline": "pipeline", "owner_id": "hubspot_owner_id"],
                email: "email", addresses: addresses, addressParts: addressParts),
        ])

    /// One address: every type goes to the same fields.
    private static let addresses: [(types: [String], prefix: String)] = [(["primary", "mailing", "billing", "other", "shipping"], "")]
    private static let addressParts: [(part: String, field: String)] = [
        ("street", "address"), ("city", "city"), ("state", "state"), ("postal_code", "zip"), ("country", "country"),
    ]
}
