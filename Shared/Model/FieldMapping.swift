/// Turns a record in the backend's names into the provider's fields for one installation: the
/// manifest's and the customer's mappings (when the write object inherits them), then the customer's
/// field settings (defaults, never written on create or update). Run by the writer on each write, so
/// a changed mapping or setting applies to the next write without a redeploy.
public enum FieldMapping {
    /// The backend's name → the provider field, for an object: the manifest's read fields that rename
    /// a provider field (`fieldName` + `mapToName`), overridden by the customer's `selectedFieldMappings`.
    public static func readMappings(object: String, integration: IntegrationSpec?, config: InstallationConfig?)
        -> [String: String]
    {
        var mappings: [String: String] = [:]
        if let declared = integration?.readObject(object) {
            for field in (declared.requiredFields ?? []) + (declared.optionalFields ?? []) {
                if let name = field.fieldName, let mapTo = field.mapToName { mappings[mapTo] = name }
            }
        }
        for (mapTo, field) in config?.readObject(object)?.selectedFieldMappings ?? [:] { mappings[mapTo] = field }
        return mappings
    }

    /// Renames the record's keys through `mappings`; keys without a mapping pass as they are. When a
    /// mapped and an unmapped key name the same provider field, the mapped one wins.
    public static func rename(_ record: [String: JSONValue], through mappings: [String: String]) -> [String: JSONValue] {
        guard !mappings.isEmpty else { return record }
        var fields: [String: JSONValue] = [:]
        for (key, value) in record where mappings[key] == nil { fields[key] = value }
        for (key, value) in record { if let field = mappings[key] { fields[field] = value } }
        return fields
    }

    /// The customer's field settings for the write object applied to provider fields: `never` drops a
    /// field from creates or updates; a default fills a field the write leaves out, on create unless
    /// `writeOnCreate` is `never`, and on update only when `writeOnUpdate` is `always`.
    public static func applySettings(
        _ fields: [String: JSONValue], type: WriteType, object: String, config: InstallationConfig?
    ) -> [String: JSONValue] {
        guard type != .delete, let settings = config?.writeObject(object)?.selectedFieldSettings else { return fields }
        var fields = fields
        for (field, setting) in settings {
            let rule = type == .update ? setting.writeOnUpdate : setting.writeOnCreate
            if rule == "never" {
                fields[field] = nil
                continue
            }
            let fillsIn = type == .update ? rule == "always" : true
            if fillsIn, fields[field] == nil, let value = setting.default?.json { fields[field] = value }
        }
        return fields
    }

    /// The whole way for a write in the provider's own names (the Write API): reverse-mapped when the
    /// write object inherits the read mappings, then the settings.
    public static func providerFields(
        _ record: [String: JSONValue], type: WriteType, object: String, integration: IntegrationSpec?,
        config: InstallationConfig?
    ) -> [String: JSONValue] {
        var fields = record
        if integration?.writeObject(object)?.inheritMapping == true {
            fields = rename(fields, through: readMappings(object: object, integration: integration, config: config))
        }
        return applySettings(fields, type: type, object: object, config: config)
    }
}
