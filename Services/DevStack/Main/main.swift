import DevStack
import Foundation
import Logging
import Postgres
import ServiceLifecycle
import Shared

// writeback-dev: tools for a local stack.
//   writeback-dev kafka [--bootstrap-file PATH]   host the mock Kafka cluster until SIGTERM/SIGINT
//   writeback-dev seed                            migrate both databases and seed the demo control data
let environment = ServiceEnvironment()
var logger = Logger(label: "writeback-dev")
logger.logLevel = Logger.Level(rawValue: environment.logLevel) ?? .info
let arguments = CommandLine.arguments.dropFirst()

switch arguments.first {
case "kafka":
    let fileIndex = arguments.firstIndex(of: "--bootstrap-file")
    let file = fileIndex.flatMap { arguments.index(after: $0) < arguments.endIndex ? arguments[arguments.index(after: $0)] : nil }
    let host = MockKafkaHost(partitions: environment.int("KAFKA_MOCK_PARTITIONS", default: 8), bootstrapFile: file, logger: logger)
    try await ServiceGroup(services: [host], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
case "seed":
    var seed = DemoSeed()
    seed.project = environment.string("SEED_PROJECT", default: seed.project)
    seed.apiKey = environment.string("SEED_API_KEY", default: seed.apiKey)
    seed.groupRef = environment.string("SEED_GROUP_REF", default: seed.groupRef)
    seed.sandboxURL = environment.string("SANDBOX_URL", default: seed.sandboxURL)
    seed.salesforceToken = environment.string("SANDBOX_SALESFORCE_TOKEN", default: seed.salesforceToken)
    seed.hubspotToken = environment.string("SANDBOX_HUBSPOT_TOKEN", default: seed.hubspotToken)
    let control = PostgresPool(url: environment.controlDatabaseURL, size: 1)
    let destination = PostgresPool(url: environment.destinationDatabaseURL, size: 1)
    try await seed.apply(control: control, destination: destination)
    control.shutdown()
    destination.shutdown()
    print("seeded project \(seed.project), groupRef \(seed.groupRef), sandbox \(seed.sandboxURL)")
default:
    FileHandle.standardError.write(Data("usage: writeback-dev kafka [--bootstrap-file PATH] | seed\n".utf8))
    exit(2)
}
