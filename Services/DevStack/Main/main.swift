import DevStack
import Foundation
import Pipeline
import Postgres
import Shared

// writeback-dev: tools for a local stack.
//   writeback-dev kafka [--bootstrap-file PATH]   host the mock Kafka cluster until SIGTERM/SIGINT
//   writeback-dev seed                            migrate both databases and make the demo project and API key
//   writeback-dev webhook-sink --port N           a webhook endpoint for benchmarks (see WebhookSink)
let environment = ServiceEnvironment()
let arguments = CommandLine.arguments.dropFirst()

switch arguments.first {
case "kafka":
    let fileIndex = arguments.firstIndex(of: "--bootstrap-file")
    let file = fileIndex.flatMap { arguments.index(after: $0) < arguments.endIndex ? arguments[arguments.index(after: $0)] : nil }
    try await runService(label: "kafka", environment: environment, metricsPort: nil) {
        [MockKafkaHost(partitions: environment.int("KAFKA_MOCK_PARTITIONS", default: 8), bootstrapFile: file, logger: $0)]
    }
case "seed":
    var seed = DemoSeed()
    seed.project = environment.string("SEED_PROJECT", default: seed.project)
    seed.apiKey = environment.string("SEED_API_KEY", default: seed.apiKey)
    let control = PostgresPool(url: environment.controlDatabaseURL, size: 1)
    let destination = PostgresPool(url: environment.destinationDatabaseURL, size: 1)
    try await seed.apply(control: control, destination: destination)
    control.shutdown()
    destination.shutdown()
    print("seeded project \(seed.project) with its API key")
case "webhook-sink":
    let portIndex = arguments.firstIndex(of: "--port")
    let port = portIndex.flatMap { arguments.index(after: $0) < arguments.endIndex ? Int(arguments[arguments.index(after: $0)]) : nil } ?? 8090
    try await runService(label: "webhook-sink", environment: environment, metricsPort: nil) { _ in
        [WebhookSink().application(host: "127.0.0.1", port: port)]
    }
default:
    FileHandle.standardError.write(Data("usage: writeback-dev kafka [--bootstrap-file PATH] | seed | webhook-sink --port N\n".utf8))
    exit(2)
}
