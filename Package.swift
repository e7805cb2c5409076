// swift-tools-version:6.1
import PackageDescription

// Mass compiles its Swift kernels for x86-64-v3 (AVX2 + FMA): every machine this project targets has it, and
// the SIMD code is 2-4x faster than the SSE2 baseline. `mass` checks the CPU at start-up and says so if not.
// One kernel target is compiled for AVX-512 (x86-64-v4) and only called after a CPU check.
#if arch(x86_64)
    let simdFlags: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-march=x86-64-v3"])]
    let avx512Flags: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-march=x86-64-v4"])]
    let cSIMDFlags: [CSetting] = [.unsafeFlags(["-march=x86-64-v3"])]
#else
    let cSIMDFlags: [CSetting] = []
    let simdFlags: [SwiftSetting] = []
    let avx512Flags: [SwiftSetting] = []
#endif

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "mass",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mass", targets: ["MassCLI"]),
        .library(name: "MassModels", targets: ["MassModels"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // Already in the graph through Hummingbird; the runtime uses them directly (logging, the service group).
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // The registry: SQLKit's query builder over SQLite (embedded default) and PostgreSQL (shared store), and
        // swift-crypto's SHA-256 for the content-addressed artifacts (already in the graph through postgres-nio).
        .package(url: "https://github.com/vapor/sql-kit", from: "3.36.0"),
        .package(url: "https://github.com/vapor/sqlite-kit", from: "4.5.2"),
        .package(url: "https://github.com/vapor/postgres-kit", from: "2.17.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        // mass pull: the hub's HTTP API (redirects, streaming bodies, Range resumes) over SwiftNIO.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // Layer 0: OpenBLAS, loaded at run time so that Mass picks the kernel family for the CPU (see shim).
        .target(name: "CMassBLAS", linkerSettings: [.linkedLibrary("dl")]),
        // Layer 1
        .target(name: "MassTensorAVX512", swiftSettings: strict + avx512Flags),
        // int8 GEMM kernels (AVX2 and AVX-512 VNNI, chosen at run time): C, for the integer intrinsics Swift's
        // SIMD types do not reach (vpdpbusd, vpmaddwd).
        .target(name: "CMassQuant", cSettings: cSIMDFlags),
        .target(
            name: "MassTensor", dependencies: ["CMassBLAS", "CMassQuant", "MassTensorAVX512"],
            swiftSettings: strict + simdFlags),
        .target(name: "MassTokenizers", swiftSettings: strict),
        // Layer 2: reverse-mode differentiation over ops whose forward passes use MassTensor's kernels.
        .target(name: "MassAutograd", dependencies: ["MassTensor", "CMassDNNL"], swiftSettings: strict + simdFlags),
        .target(
            name: "CMassAudio",
            linkerSettings: [.linkedLibrary("sndfile"), .linkedLibrary("swresample"), .linkedLibrary("avutil")]),
        .target(name: "MassAudio", dependencies: ["CMassAudio"], swiftSettings: strict + simdFlags),
        .systemLibrary(name: "CZlib"),
        .target(
            name: "CMassDNNL", cSettings: cSIMDFlags,
            linkerSettings: [.linkedLibrary("dnnl"), .linkedLibrary("gomp")]),
        .target(
            name: "CMassImage", cSettings: cSIMDFlags,
            linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("jpeg"), .linkedLibrary("deflate")]),
        .target(name: "MassImage", dependencies: ["CMassImage", "MassTensor"], swiftSettings: strict + simdFlags),
        // Plots: an SVG rasterised to PNG by librsvg on cairo (Debian librsvg2-dev), so both files show one drawing.
        .target(
            name: "CMassPlot",
            cSettings: [
                .unsafeFlags([
                    "-I/usr/include/librsvg-2.0", "-I/usr/include/glib-2.0",
                    "-I/usr/lib/x86_64-linux-gnu/glib-2.0/include", "-I/usr/include/gdk-pixbuf-2.0",
                    "-I/usr/include/cairo",
                ])
            ],
            linkerSettings: [
                .linkedLibrary("rsvg-2"), .linkedLibrary("cairo"), .linkedLibrary("gobject-2.0"),
                .linkedLibrary("glib-2.0"),
            ]),
        // Layer 2
        .target(name: "MassWeights", dependencies: ["MassTensor"], swiftSettings: strict + simdFlags),
        // Layer 3
        .target(
            name: "MassModels",
            dependencies: [
                "MassTensor", "MassWeights", "MassTokenizers", "MassImage", "MassAudio", "CZlib", "CMassDNNL",
            ],
            swiftSettings: strict + simdFlags
        ),
        // Layer 3: training on Mass's engine (models with trainable weights, optimizers, schedules, jobs).
        .target(
            name: "MassTraining",
            dependencies: [
                "MassAutograd", "MassModels", "MassWeights", "MassTensor", "MassImage", "CZlib", "CMassPlot",
            ],
            swiftSettings: strict + simdFlags),
        // Layer 4
        // Tuning's samplers and pruners: plain Swift over trial records (the registry keeps the records).
        .target(name: "MassTuning", dependencies: ["MassAutograd"], swiftSettings: strict),
        // Studies: the tuning configuration, and the sampler's and pruner's decisions over the registry's trials.
        .target(
            name: "MassStudies", dependencies: ["MassTuning", "MassRegistry", "MassTraining"], swiftSettings: strict),
        .target(
            name: "MassRuntime",
            dependencies: [
                "MassModels", "MassTensor", "MassTokenizers", "MassImage", "MassAudio", "MassRegistry", "MassWeights",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // Service-type models: a provider's API over a pooled, keep-alive HTTP client.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict),
        // Layer 4: the model registry (records, history, artifacts, deployments); no HTTP, no models.
        .target(
            name: "MassRegistry",
            dependencies: [
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // Layer 4: tenants, API keys, plans and their exact limits, usage metering (over the registry's database).
        .target(
            name: "MassTenancy",
            dependencies: [
                "MassRegistry",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        // Layer 4: a Hugging Face-style hub client (listing, resumable and verified downloads, a cache).
        .target(
            name: "MassHub",
            dependencies: [
                "MassRegistry",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict),
        // Layer 5
        .target(
            name: "MassServer",
            dependencies: [
                "MassRuntime", "MassModels", "MassImage", "MassAudio", "CMassBLAS", "MassRegistry", "MassTenancy",
                "MassTraining", "MassStudies", "MassTuning",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            // Hummingbird re-exports HTTPTypes' types without their members' module: no MemberImportVisibility.
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
        // Layer 6
        .executableTarget(
            name: "MassCLI",
            dependencies: [
                "MassModels", "MassTensor", "MassTokenizers", "MassServer", "MassRuntime", "MassImage", "MassAudio",
                "MassRegistry", "MassHub", "MassTenancy", "MassTraining", "MassAutograd", "MassWeights",
                "MassTuning", "MassStudies",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict + simdFlags
        ),
        .target(name: "MassTesting", dependencies: ["MassTensor", "MassModels", "MassRuntime"], swiftSettings: strict),
        .testTarget(
            name: "MassTensorTests", dependencies: ["MassTensor", "MassTesting"], swiftSettings: strict + simdFlags),
        .testTarget(
            name: "MassAudioTests", dependencies: ["MassAudio", "MassTesting"], exclude: ["Decoding"],
            swiftSettings: strict),
        .testTarget(
            name: "MassImageTests", dependencies: ["MassImage", "MassTesting"], exclude: ["images"],
            swiftSettings: strict),
        .testTarget(name: "MassWeightsTests", dependencies: ["MassWeights", "MassTesting"], swiftSettings: strict),
        .testTarget(name: "MassAutogradTests", dependencies: ["MassAutograd"], swiftSettings: strict),
        .testTarget(
            name: "MassTuningTests", dependencies: ["MassTuning", "MassStudies", "MassTraining"], swiftSettings: strict),
        .testTarget(
            name: "MassTrainingTests",
            dependencies: [
                "MassTraining", "MassTesting", "MassWeights", "MassTensor", "MassModels", "MassAutograd",
                "MassTokenizers",
            ],
            exclude: ["Goldens"], swiftSettings: strict),
        .testTarget(
            name: "MassTokenizersTests", dependencies: ["MassTokenizers", "MassTesting"], exclude: ["Goldens"],
            swiftSettings: strict),
        .testTarget(
            name: "MassRuntimeTests",
            dependencies: [
                "MassRuntime", "MassModels", "MassTesting", "MassAutograd",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict),
        // The live tests run the built binary; RouterTests run the router in process with Hummingbird's client.
        .testTarget(
            name: "MassServerTests",
            dependencies: [
                "MassTesting", "MassServer", "MassRuntime", "MassRegistry", "MassTenancy", "MassTensor",
                .product(name: "Hummingbird", package: "hummingbird"),
                // The fault-injecting proxy in front of a provider: raw channels (drops, hangs) and a client.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "MassRegistryTests",
            dependencies: [
                "MassRegistry", "MassTenancy", "MassTesting", .product(name: "SQLKit", package: "sql-kit"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "MassModelsTests",
            dependencies: [
                "MassModels", "MassTesting", "MassTokenizers", "MassWeights", "MassTensor", "MassImage", "MassAudio",
                "MassAutograd", "MassTraining", .product(name: "Crypto", package: "swift-crypto"),
            ],
            exclude: ["Goldens", "Audio"],
            swiftSettings: strict
        ),
    ]
)
