import HTTPClient

/// The libcurl client's request and response, under names that do not clash with the HTTP types of the
/// api's own server.
typealias ProviderRequest = HTTPRequest
typealias ProviderResponse = HTTPResponse
