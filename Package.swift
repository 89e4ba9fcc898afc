// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "envhub",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "envhub", targets: ["envhub"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .target(
            name: "EnvHubCore",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .target(
            name: "EnvHubStore",
            dependencies: [
                "EnvHubCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                // For the pool's own error (`ConnectionPoolError`), which PostgresNIO passes on as it is.
                .product(name: "_ConnectionPoolModule", package: "postgres-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "EnvHubServer",
            dependencies: [
                "EnvHubCore",
                "EnvHubStore",
                "EnvHubRuntime",
                "CAllocator",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [
                .copy("Resources/templates"),
                .copy("Resources/openapi.json"),
                .copy("Resources/web"),
            ]
        ),
        .target(
            name: "EnvHubKubernetes",
            dependencies: [
                "EnvHubCore",
                "EnvHubRuntime",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .target(name: "CProcessSpawn"),
        .target(name: "CAllocator"),
        .target(
            name: "EnvHubRuntime",
            dependencies: [
                "EnvHubCore",
                "CProcessSpawn",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "EnvHubWorkloads",
            dependencies: [
                "EnvHubStore",
                "EnvHubRuntime",
                "CProcessSpawn",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "envhub",
            dependencies: [
                "EnvHubServer",
                "EnvHubKubernetes",
                "EnvHubWorkloads",
                "EnvHubStore",
                "EnvHubCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "EnvHubTestSupport",
            dependencies: [
                "EnvHubStore",
                "EnvHubCore",
                "EnvHubKubernetes",
                "CProcessSpawn",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            path: "Tests/Support",
            exclude: ["gateway-test-app.py", "agent-test-app.py"]
        ),
        .testTarget(
            name: "EnvHubCoreTests",
            dependencies: ["EnvHubCore"]
        ),
        .testTarget(
            name: "EnvHubStoreTests",
            dependencies: [
                "EnvHubStore", "EnvHubCore", "EnvHubTestSupport",
                .product(name: "_ConnectionPoolModule", package: "postgres-nio"),
            ]
        ),
        .testTarget(
            name: "EnvHubRuntimeTests",
            dependencies: [
                "EnvHubRuntime", "EnvHubCore", "EnvHubTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        .testTarget(
            name: "EnvHubKubernetesTests",
            dependencies: [
                "EnvHubKubernetes", "EnvHubRuntime", "EnvHubCore", "EnvHubTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "EnvHubWorkloadsTests",
            dependencies: [
                "EnvHubWorkloads", "EnvHubTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "EnvHubServerTests",
            dependencies: [
                "EnvHubServer",
                "EnvHubStore",
                "EnvHubCore",
                "EnvHubTestSupport",
                "EnvHubRuntime",
                "EnvHubKubernetes",
                "CAllocator",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
    ]
)
