import Actions
import Shared
import Testing

@Suite("Action schemas")
struct ActionSchemaTests {
    /// Contact fields as the metadata read gives them.
    let fields: [String: JSONValue] = [
        "email": ["fieldName": "email", "displayName": "Email", "valueType": "string", "readOnly": false],
        "lastname": ["fieldName": "lastname", "displayName": "Last name", "valueType": "string", "readOnly": false, "isRequired": true],
        "employees": ["fieldName": "employees", "displayName": "Employees", "valueType": "int", "readOnly": false],
        "stage": ["fieldName": "stage", "displayName": "Stage", "valueType": "singleSelect", "readOnly": false,
                  "values": [["value": "lead"], ["value": "customer"]]],
        "hs_object_id": ["fieldName": "hs_object_id", "valueType": "float", "readOnly": true],
    ]

    var create: ActionDefinition { ActionCatalog.action("create_contact", provider: .hubspot)! }

    @Test("a create's input: one parameter per writable field, required ones named, nothing else accepted")
    func createInput() {
        let schema = ActionSchema.input(create, provider: .hubspot, fields: fields)
        #expect(schema["required"] == ["lastname"])
        #expect(schema.objectValue?["properties"]?["hs_object_id"] == nil)
        let check = SchemaCheck()
        #expect(check.check(["lastname": "Doe", "email": "a@example.com", "stage": "lead", "employees": 3], against: schema).issues.isEmpty)
        let issues = check.check(["emial": "a@example.com", "employees": .number(2.5), "stage": "vip"], against: schema).issues
        #expect(issues.map(\.path).sorted() == ["emial", "employees", "lastname", "stage"], "\(issues)")
        #expect(issues.first { $0.path == "emial" }?.message.contains("did you mean 'email'") == true, "\(issues)")
        #expect(issues.first { $0.path == "stage" }?.message.contains("'lead', 'customer'") == true)
    }

    @Test("strings convert to numbers and booleans only when asked, and the converted value is what runs")
    func coercion() {
        let get = ActionSchema.input(ActionCatalog.action("get_contact", provider: .hubspot)!, provider: .hubspot, fields: fields)
        #expect(SchemaCheck().check(["limit": "1"], against: get).issues.map(\.path) == ["limit"])
        let coerced = SchemaCheck(coerceStrings: true).check(["limit": "1"], against: get)
        #expect(coerced.issues.isEmpty && coerced.value["limit"] == 1)
        #expect(SchemaCheck(coerceStrings: true).check(["limit": "many"], against: get).issues.first?.message.contains("whole number") == true)
        let search = ActionSchema.input(ActionCatalog.action("search_contacts", provider: .hubspot)!, provider: .hubspot, fields: fields)
        #expect(SchemaCheck().check(["filters": ["emal": "x"]], against: search).issues.map(\.path) == ["filters.emal"])
    }

    @Test("a customization renames an input, fixes a value and defaults another; what runs writes accordingly")
    func customization() {
        let base = ActionSchema.input(create, provider: .hubspot, fields: fields)
        let (custom, issues) = ActionCustomization().merged([
            "config": ["fieldMapping": ["lastname": ["$var": "$.input.surname"], "stage": "customer"], "inputDefaults": ["email": "x@example.com"]],
        ], action: create, base: base)
        #expect(issues.isEmpty, "\(issues)")
        let schema = custom.inputSchema(base: base)
        #expect(schema["required"] == ["surname"])
        #expect(schema["properties"]?["lastname"] == nil && schema["properties"]?["stage"] == nil)
        #expect(schema["properties"]?["email"]?["default"] == "x@example.com")
        let input = custom.withDefaults(["surname": "Smith"])
        #expect(SchemaCheck().check(.object(input), against: schema).issues.isEmpty)
        #expect(custom.record(from: input) == ["lastname": "Smith", "stage": "customer", "email": "x@example.com"])
        let (_, refused) = custom.merged(["config": ["fieldMapping": ["stage": "vip", "nope": "x"], "defaults": [:]], "colour": "red"],
                                         action: create, base: base)
        #expect(Set(refused.map(\.path)) == ["colour", "config.defaults", "config.fieldMapping.stage", "config.fieldMapping.nope"], "\(refused)")
        #expect(ActionCustomization().record(from: ["id": "1", "email": "a"]) == ["email": "a"])
    }
}
