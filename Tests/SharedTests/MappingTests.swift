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

    @Test("a value sealed by another AES-256-GCM implementation (nonce, ciphertext, tag) opens; HMACs match RFC 4231")
    func knownAnswers() throws {
        let key = try SecretBox.Key(base64: Data(repeating: 1, count: 32).base64EncodedString())
        #expect(key.id == "72cd6e8422c407fb")
        let sealedElsewhere = "wb1.72cd6e8422c407fb.AAECAwQFBgcICQoLz8n+Q07TN0vN7UA85lZMLdnLCQEonoyczQ=="
        #expect(try SecretBox(current: key).open(sealedElsewhere, context: "connection:a") == Array("token-123".utf8))
        var altered = Array(Data(base64Encoded: String(sealedElsewhere.split(separator: ".")[2]))!)
        altered[14] ^= 1
        #expect(throws: SecretError.self) {
            try SecretBox(current: key).open("wb1.72cd6e8422c407fb.\(Data(altered).base64EncodedString())", context: "connection:a")
        }
        let hex = { (bytes: [UInt8]) in bytes.map { String(format: "%02x", $0) }.joined() }
        let message = Array("what do ya want for nothing?".utf8), jefe = Array("Jefe".utf8)
        #expect(hex(Digest.sha256.authenticationCode(key: jefe, message: message))
            == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(hex(Digest.sha384.authenticationCode(key: jefe, message: message))
            == "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649")
        #expect(hex(Digest.sha512.authenticationCode(key: jefe, message: message)) == "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737")
        let token = HMACToken.sign(payload: Array(#"{"id":"a"}"#.utf8), secret: jefe, algorithm: "HS384")
        #expect(HMACToken.verifies(token, secret: jefe, digest: .sha384))
        #expect(!HMACToken.verifies(token, secret: Array("Jeff".utf8), digest: .sha384))
        #expect(!HMACToken.verifies(token, secret: jefe, digest: .sha256))
    }
}
