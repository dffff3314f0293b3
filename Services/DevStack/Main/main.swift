import DevStack
import Foundation
import Pipeline
import Postgres
import Shared

// writeback-dev: tools for a local stack.
//   writeback-dev kafka [--bootstrap-file PATH]   host the mock Kafka cluster until SIGTERM/SIGINT
//   writeback-dev seed                            migrate both databases and make the demo project and API key
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
default:
    FileHandle.standardError.write(Data("usage: writeback-dev kafka [--bootstrap-file PATH] | seed\n".utf8))
    exit(2)
}
