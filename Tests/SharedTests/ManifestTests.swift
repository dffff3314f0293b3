import Foundation
import Manifest
import Shared
import Testing

@Suite("Manifests")
struct ManifestTests {
    @Test("the example amp.yaml reads into its integrations, write objects and proxy setting")
    func example() throws {
        let text = try String(contentsOfFile: "examples/amp.yaml", encoding: .utf8)
        let manifest = try Manifest.parse(text).get()
        #expect(manifest.specVersion == "1.0.0")
        #expect(manifest.integrations.map(\.name) == ["write-to-salesforce", "write-to-hubspot", "write-to-pipedrive"])
        let salesforce = manifest.integrations[0]
        #expect(salesforce.writeObjects.map(\.objectName) == ["account", "contact", "lead", "opportunity", "touchpoints__c"])
        #expect(salesforce.writeObject("Contact")?.inheritMapping == true)
        #expect(salesforce.writeObject("contact")?.valueDefaults?.allowAnyFields == true)
        #expect(salesforce.readObject("contact")?.optionalFields?.first?.mapToName == "warmth")
        #expect(salesforce.proxy?.enabled == true)
        #expect(manifest.integrations[1].writeObject("p_pets") != nil)
    }

    @Test("a bad manifest is answered with every problem, each with its path, line and column")
    func problemsLocated() throws {
        let text = """
            specVersion: 2.0.0
            integrations:
              - name: write to sf
                provider: salesforce
                write:
                  objects:
                    - objectName: acount__x__y
                    - objectName: contact
                      inheritMapping: yes please
                    - objectName: contact
              - name: hub
                provider: zoho
                wirte:
                  objects: []
              - name: hub2
                provider: hubspot
                write:
                  objects:
                    - objectName: widgets
                    - inheritMapping: true
            """
        guard case .failure(let errors) = Manifest.parse(text) else {
            Issue.record("the bad manifest was accepted")
            return
        }
        func issue(_ path: String) -> ManifestIssue? { errors.issues.first { $0.path == path } }
        #expect(issue("specVersion")?.line == 1)
        #expect(issue("specVersion")?.message.contains("not supported") == true)
        #expect(issue("integrations[0].name")?.line == 3)
        #expect(issue("integrations[0].write.objects[0].objectName")?.line == 7)
        #expect(issue("integrations[0].write.objects[0].objectName")?.column == 23)
        #expect(issue("integrations[0].write.objects[1].inheritMapping")?.message.contains("true or false") == true)
        #expect(issue("integrations[0].write.objects[2].objectName")?.message.contains("already declared") == true)
        #expect(issue("integrations[1].provider")?.message.contains("zoho") == true)
        #expect(issue("integrations[1].wirte")?.line == 13)
        #expect(issue("integrations[1].wirte")?.message.contains("unknown key") == true)
        #expect(issue("integrations[2].write.objects[0].objectName")?.message.contains("not a HubSpot object") == true)
        #expect(issue("integrations[2].write.objects[1].objectName")?.message == "objectName is required")
        #expect(errors.issues.count >= 10, "\(errors.issues)")
    }

    @Test("inheritMapping needs a read object to inherit from; YAML that does not parse says where")
    func inheritAndSyntax() {
        let orphan = """
            specVersion: 1.0.0
            integrations:
              - name: a
                provider: salesforce
                write:
                  objects:
                    - objectName: contact
                      inheritMapping: true
            """
        guard case .failure(let errors) = Manifest.parse(orphan) else {
            Issue.record("accepted")
            return
        }
        #expect(errors.issues.map(\.path) == ["integrations[0].write.objects[0].inheritMapping"])
        guard case .failure(let syntax) = Manifest.parse("specVersion: 1.0.0\nintegrations: [\n  - name: x\n") else {
            Issue.record("accepted")
            return
        }
        #expect(syntax.issues.count == 1)
        #expect(syntax.issues[0].message.hasPrefix("not valid YAML"))
        #expect(syntax.issues[0].line != nil)
    }
}
