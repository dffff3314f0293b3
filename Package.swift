// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let hummingbird: Target.Dependency = .product(name: "Hummingbird", package: "hummingbird")
let lifecycle: Target.Dependency = .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let httpTypes: Target.Dependency = .product(name: "HTTPTypes", package: "swift-http-types")
let metrics: Target.Dependency = .product(name: "Metrics", package: "swift-metrics")
let prometheus: Target.Dependency = .product(name: "Prometheus", package: "swift-prometheus")
let yams: Target.Dependency = .product(name: "Yams", package: "Yams")
let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")

/// Each service is a library target with its logic plus a thin executable.
func service(_ name: String, executable: String, dependencies: [Target.Dependency],
             mainDependencies: [Target.Dependency] = []) -> [Target] {
    [
        .target(name: name, dependencies: dependencies, path: "Services/\(name)/Sources", swiftSettings: swiftSettings),
        .executableTarget(name: "\(name)Main", dependencies: [.target(name: name), "Pipeline", "Shared", "Kafka", logging] + mainDependencies,
                          path: "Services/\(name)/Main", swiftSettings: swiftSettings),
    ]
}

let package = Package(
    name: "writeback",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "writeback-api", targets: ["APIMain"]),
        .executable(name: "writeback-writer", targets: ["WriterMain"]),
        .executable(name: "writeback-cache-invalidator", targets: ["CacheInvalidatorMain"]),
        .executable(name: "writeback-operations", targets: ["OperationsMain"]),
        .executable(name: "writeback-notifier", targets: ["NotifierMain"]),
        .executable(name: "writeback-sandbox", targets: ["SandboxMain"]),
        .executable(name: "writeback-dev", targets: ["DevStackMain"]),
        .executable(name: "writeback", targets: ["CLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
    ],
    targets: [
        .systemLibrary(name: "CRdKafka", path: "Shared/CRdKafka", pkgConfig: "rdkafka",
                       providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(name: "CLibPQ", path: "Shared/CLibPQ", pkgConfig: "libpq",
                       providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CCurl", path: "Shared/CCurl", pkgConfig: "libcurl",
                       providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CMalloc", path: "Shared/CMalloc"),
        .systemLibrary(name: "CCrypto", path: "Shared/CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .target(name: "Kafka", dependencies: ["CRdKafka", lifecycle, logging], path: "Shared/Kafka", swiftSettings: swiftSettings),
        .target(name: "ThreadPool", path: "Shared/ThreadPool", swiftSettings: swiftSettings),
        .target(name: "Postgres", dependencies: ["CLibPQ", "ThreadPool", metrics], path: "Shared/Postgres", swiftSettings: swiftSettings),
        .target(name: "HTTPClient", dependencies: ["CCurl", "ThreadPool"], path: "Shared/HTTPClient", swiftSettings: swiftSettings),
        .target(name: "Pipeline", dependencies: ["Kafka", "Postgres", "Shared", hummingbird, lifecycle, logging, metrics, prometheus], path: "Shared/Pipeline",
                swiftSettings: swiftSettings),
        .target(name: "Shared", dependencies: [.product(name: "Configuration", package: "swift-configuration")], path: "Shared/Model",
                swiftSettings: swiftSettings),
        .target(name: "Schema", dependencies: ["Postgres", "Shared"], path: "Shared/Schema", swiftSettings: swiftSettings),
        .target(name: "Connectors", dependencies: ["Shared", "HTTPClient"], path: "Shared/Connectors",
                swiftSettings: swiftSettings),
        .target(name: "Secrets", dependencies: ["CCrypto"], path: "Shared/Secrets", swiftSettings: swiftSettings),
        .target(name: "CSV", path: "Shared/CSV", swiftSettings: swiftSettings),
        .target(name: "ProviderAccess", dependencies: ["Connectors", "Postgres", "Secrets", "Shared"], path: "Shared/ProviderAccess",
                swiftSettings: swiftSettings),
        .target(name: "Manifest", dependencies: ["Shared", "Connectors", yams], path: "Shared/Manifest", swiftSettings: swiftSettings),
        .target(name: "Actions", dependencies: ["Shared", "Connectors"], path: "Shared/Actions", swiftSettings: swiftSettings),
        .executableTarget(name: "CLI", dependencies: ["Manifest", "Shared", "HTTPClient", "Secrets", argumentParser], path: "Tools/CLI",
                          swiftSettings: swiftSettings),
    ]
    + service("API", executable: "writeback-api",
              dependencies: ["Schema", "Shared", "Kafka", "Pipeline", "Postgres", "Manifest", "ProviderAccess", "Secrets", "Connectors",
                             "HTTPClient", "CSV", "Actions", hummingbird, httpTypes, lifecycle, logging, metrics,
                             .product(name: "Mustache", package: "swift-mustache")],
              mainDependencies: ["Connectors", "HTTPClient"])
    + service("Writer", executable: "writeback-writer",
              dependencies: ["Schema", "Shared", "Kafka", "Pipeline", "Postgres", "Connectors", "HTTPClient", "ProviderAccess", "Secrets",
                             "CSV", "CMalloc", lifecycle, logging, metrics],
              mainDependencies: ["Connectors", "HTTPClient", "CMalloc"])
    + service("CacheInvalidator", executable: "writeback-cache-invalidator",
              dependencies: ["Schema", "Shared", "Kafka", "Pipeline", "Postgres", lifecycle, logging, metrics])
    + service("Operations", executable: "writeback-operations",
              dependencies: ["Schema", "Shared", "Kafka", "Pipeline", "Postgres", lifecycle, logging, metrics])
    + service("Notifier", executable: "writeback-notifier",
              dependencies: ["Schema", "Shared", "Kafka", "Pipeline", "Postgres", "HTTPClient", "Secrets", lifecycle, logging, metrics],
              mainDependencies: ["HTTPClient", "Secrets"])
    + service("Sandbox", executable: "writeback-sandbox",
              dependencies: ["Shared", "Pipeline", "CSV", hummingbird, httpTypes,
                             lifecycle, logging])
    + service("DevStack", executable: "writeback-dev",
              dependencies: ["Schema", "Shared", "Kafka", "Pipeline", "Postgres", "Secrets", hummingbird, httpTypes, lifecycle, logging])
    + [
        .testTarget(name: "SharedTests", dependencies: ["Shared", "Connectors", "Manifest", "Secrets", "CSV", "HTTPClient", "Actions"], path: "Tests/SharedTests"),
        .testTarget(name: "KafkaTests", dependencies: ["Kafka", "Pipeline", lifecycle, logging], path: "Tests/KafkaTests"),
        .testTarget(name: "APITests", dependencies: ["API", "Shared", "Kafka", "Postgres", "Schema", "Secrets", "ProviderAccess", "HTTPClient",
                                                  hummingbird, httpTypes, logging, .product(name: "NIOEmbedded", package: "swift-nio")],
                    path: "Tests/APITests"),
        .target(name: "TestSupport", dependencies: ["Postgres", "Schema"], path: "Tests/Support", swiftSettings: swiftSettings),
        .testTarget(name: "WriterTests", dependencies: ["Writer", "Kafka", "Pipeline", "Shared", "ThreadPool", "Postgres", "TestSupport", logging],
                    path: "Tests/WriterTests"),
        .testTarget(name: "OperationsTests", dependencies: ["Operations", "Shared", "Postgres", "Schema", "Pipeline", "TestSupport", logging],
                    path: "Tests/OperationsTests"),
        .testTarget(name: "CacheInvalidatorTests", dependencies: ["CacheInvalidator", "Shared", "Kafka", "Postgres", "Schema", "TestSupport"],
                    path: "Tests/CacheInvalidatorTests"),
        .testTarget(name: "EndToEndTests", dependencies: ["Shared", "Schema", "HTTPClient", "Postgres", "ProviderAccess", "Secrets", "Manifest", "Actions"],
                    path: "Tests/EndToEndTests", exclude: ["Oracles"]),
    ]
)
