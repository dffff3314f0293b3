/// SQL for a timestamp column (or expression) as RFC 3339 text in UTC with microseconds, the form every
/// answer and message writes times in.
public func timestamp(_ column: String) -> String {
    "to_char(\(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
}
