import Connectors
import Foundation
import Manifest
import Secrets
import Shared
import Testing

@Suite("Mappings and secrets")
struct MappingTests {
    static let manifest = """
        specVersion: 1.0.0
        integrations:
          - name: crm
            provider: salesforce
            read:
              objects:
                - objectName: contact
                  destination: hook
                  schedule: "* * * * *"
                  optionalFields:
                    - fieldName: Email
                      mapToName: email
                    - mapToName: warmth
            write:
              objects:
                - objectName: contact
                  inheritMapping: true
                  valueDefaults:
                    allowAnyFields: true
        """
    static let integration = try! Manifest.parse(manifest).get().integrations[0]

    @Test("inheritMapping reverse-maps the backend's names through the manifest's and the customer's mappings")
    func reverseMapping() {
        let config = InstallationConfig(read: .init(objects: ["contact": .init(selectedFieldMappings: ["warmth": "Warmth__c"])]))
        let fields = FieldMapping.providerFields(
            ["email": "a@b.c", "warmth": "hot", "LastName": "Lovelace"], type: .create, object: "contact",
            integration: Self.integration, config: config)
        #expect(fields == ["Email": "a@b.c", "Warmth__c": "hot", "LastName": "Lovelace"])
        let plain = try! Manifest.parse(Self.manifest.replacingOccurrences(of: "inheritMapping: true", with: "inheritMapping: false"))
            .get().integrations[0]
        let unmapped = FieldMapping.providerFields(["warmth": "hot"], type: .create, object: "contact", integration: plain, config: config)
        #expect(unmapped == ["warmth": "hot"])
    }

    @Test("field settings: defaults fill creates, never-written fields are dropped, updates get defaults only when always")
    func settings() {
        let config = InstallationConfig(write: .init(objects: ["contact": .init(selectedFieldSettings: [
            "LeadSource": .init(default: .init(value: "Writeback"), writeOnCreate: "always", writeOnUpdate: "never"),
            "Region__c": .init(default: .init(value: "EMEA"), writeOnUpdate: "always"),
            "Secret__c": .init(writeOnCreate: "never"),
        ])]))
        let created = FieldMapping.applySettings(["LastName": "X", "Secret__c": "s"], type: .create, object: "contact", config: config)
        #expect(created == ["LastName": "X", "LeadSource": "Writeback", "Region__c": "EMEA"])
        let updated = FieldMapping.applySettings(["LeadSource": "Web", "Secret__c": "s"], type: .update, object: "contact", config: config)
        #expect(updated == ["Region__c": "EMEA", "Secret__c": "s"])
    }

    @Test("a unified contact maps to each provider's own fields; what a provider has no field for is a warning")
    func unified() {
        let record: [String: JSONValue] = [
            "first_name": "Ada", "last_name": "Lovelace", "lifecycle_stage": "lead",
            "email_addresses": [["email_address": "ada@example.com", "email_address_type": "work"]],
            "phone_numbers": [["phone_number": "+1", "phone_number_type": "mobile"]],
            "addresses": [["address_type": "mailing", "street_1": "1 Main", "street_2": "Apt 2", "city": "London", "state": .null,
                           "postal_code": "N1", "country": "UK"]],
            "custom_fields": ["warmth": "hot", "Other__c": 1],
        ]
        let salesforce = UnifiedObject.contacts.providerFields(record, mapping: Provider.salesforce.profile.unified[.contacts]!, customMappings: ["warmth": "Warmth__c"])
        #expect(salesforce.fields == [
            "FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@example.com", "MobilePhone": "+1",
            "MailingStreet": "1 Main\nApt 2", "MailingCity": "London", "MailingPostalCode": "N1", "MailingCountry": "UK",
            "Warmth__c": "hot", "Other__c": 1,
        ])
        #expect(salesforce.warnings.count == 1 && salesforce.warnings[0].hasPrefix("lifecycle_stage"))
        let hubspot = UnifiedObject.contacts.providerFields(record, mapping: Provider.hubspot.profile.unified[.contacts]!)
        #expect(hubspot.fields["firstname"] == "Ada" && hubspot.fields["email"] == "ada@example.com")
        #expect(hubspot.fields["lifecyclestage"] == "lead" && hubspot.fields["city"] == "London" && hubspot.fields["zip"] == "N1")
        #expect(hubspot.warnings.isEmpty)
        let problems = UnifiedObject.contacts.problems(in: [
            "first_name": 3, "nickname": "x", "email_addresses": [["email_address": "a", "email_address_type": "home"]],
        ])
        #expect(problems.map(\.name) == ["record.email_addresses[0].email_address_type", "record.first_name", "record.nickname"])
    }

    @Test("sealed secrets open only with their key and row; a rotated key still opens old values and marks them stale")
    func secrets() throws {
        let old = try SecretBox.Key(base64: Data(repeating: 1, count: 32).base64EncodedString())
        let new = try SecretBox.Key(base64: Data(repeating: 2, count: 32).base64EncodedString())
        let before = SecretBox(current: old)
        let sealed = try before.seal(Array("token-123".utf8), context: "connection:a")
        #expect(!sealed.contains("token-123"))
        #expect(sealed.hasPrefix("wb1.\(old.id)."))
        #expect(try before.open(sealed, context: "connection:a") == Array("token-123".utf8))
        #expect(throws: SecretError.self) { try before.open(sealed, context: "connection:b") }
        let rotated = SecretBox(current: new, previous: [old])
        #expect(rotated.isStale(sealed))
        #expect(try rotated.open(sealed, context: "connection:a") == Array("token-123".utf8))
        #expect(throws: SecretError.self) { try SecretBox(current: new).open(sealed, context: "connection:a") }
        #expect(throws: SecretError.self) { try SecretBox(environment: [:]) }
        #expect(throws: SecretError.self) { try SecretBox(environment: ["WRITEBACK_ENCRYPTION_KEY": "short"]) }
    }
}
