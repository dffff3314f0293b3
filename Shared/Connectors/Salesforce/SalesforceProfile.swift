import Shared

extension ProviderProfile {
    static let salesforce = ProviderProfile(
        provider: .salesforce, displayName: "Salesforce", recordIdField: "Id", fieldNamesIgnoreCase: true,
        customFieldHint: "custom fields end in __c", pagesWithCursor: false, bulkJobs: true,
        objectAliases: aliases([("contact", "Contact"), ("account", "Account"), ("lead", "Lead"), ("opportunity", "Opportunity"),
                                ("ticket", "Case"), ("user", "User")]),
        knownObjects: [],
        objectPatterns: [#"^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*$"#, #"^[A-Za-z][A-Za-z0-9_]*__(c|e|mdt|x|b)$"#],
        objectAdvice: "use an API name such as account, or a custom object such as touchpoints__c",
        catalogObjects: [CatalogObject("contact", "contacts", "Contact"), CatalogObject("account", "accounts", "Account")],
        unified: [
            .contacts: UnifiedMapping(
                providerName: "Salesforce", object: "Contact",
                fields: ["first_name": "FirstName", "last_name": "LastName", "account_id": "AccountId", "owner_id": "OwnerId"],
                email: "Email", phones: [("primary", "Phone"), ("mobile", "MobilePhone"), ("fax", "Fax"), ("other", "OtherPhone")],
                addresses: [(["mailing", "primary"], "Mailing"), (["other"], "Other")], addressParts: addressParts,
                upsertFields: [("email", "Email")]),
            .accounts: UnifiedMapping(
                providerName: "Salesforce", object: "Account",
                fields: ["name": "Name", "description": "Description", "industry": "Industry",
                         "number_of_employees": "NumberOfEmployees", "website": "Website", "owner_id": "OwnerId"],
                email: "Email", phones: [("primary", "Phone"), ("fax", "Fax")],
                addresses: [(["billing", "primary"], "Billing"), (["shipping"], "Shipping")], addressParts: addressParts,
                upsertFields: [("website", "Website")]),
            .leads: UnifiedMapping(
                providerName: "Salesforce", object: "Lead",
                fields: ["first_name": "FirstName", "last_name": "LastName", "company": "Company", "lead_source": "LeadSource",
                         "title": "Title", "owner_id": "OwnerId"],
                email: "Email", addresses: [(["primary", "mailing", "other", "billing", "shipping"], "")], addressParts: addressParts,
                upsertFields: [("email", "Email")]),
            .opportunities: UnifiedMapping(
                providerName: "Salesforce", object: "Opportunity",
                fields: ["amount": "Amount", "close_date": "CloseDate", "description": "Description", "name": "Name",
                         "stage": "StageName", "account_id": "AccountId", "owner_id": "OwnerId"],
                dateFields: ["close_date"], email: "Email"),
        ])

    /// Salesforce's compound addresses: MailingStreet, MailingCity, …
    private static let addressParts: [(part: String, field: String)] = [
        ("street", "Street"), ("city", "City"), ("state", "State"), ("postal_code", "PostalCode"), ("country", "Country"),
    ]
}
