import HTTPClient
import Shared

extension GuardedDownload {
    /// How a bulk write's `recordsURL` may be fetched, from the environment (the api reads its header,
    /// the writer all of it): `WRITEBACK_RECORDS_URL_ALLOW` (hosts and networks allowed although not
    /// public, comma-separated), `WRITEBACK_RECORDS_URL_MAX_BYTES` (default 10 GiB; 0: no limit) and
    /// `WRITEBACK_RECORDS_URL_TIMEOUT_SECONDS` (default 21600).
    public init(environment: ServiceEnvironment) {
        self.init(
            guardrail: URLGuard(allow: environment.string("WRITEBACK_RECORDS_URL_ALLOW", default: "")
                .split(separator: ",").map(String.init)),
            maxBytes: Int64(environment.string("WRITEBACK_RECORDS_URL_MAX_BYTES", default: "10737418240")) ?? 10 << 30,
            timeout: environment.double("WRITEBACK_RECORDS_URL_TIMEOUT_SECONDS", default: 21600),
            stallSeconds: environment.int("WRITEBACK_RECORDS_URL_STALL_SECONDS", default: 60))
    }
}
