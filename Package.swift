// swift-tools-version:6.0
import PackageDescription

// Release builds of the numeric targets skip overflow/bounds checks in hot loops; debug builds keep them.
let fastMath: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-wmo", "-Xcc", "-fno-math-errno"], .when(configuration: .release))
]

let package = Package(
    name: "SwiftTransformer",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "coordinator", targets: ["CoordinatorCLI"]),
        .executable(name: "worker", targets: ["WorkerCLI"]),
        .executable(name: "transformer", targets: ["TransformerCLI"]),
        .library(name: "Training", targets: ["Training"]),
        .executable(name: "fuzz", targets: ["FuzzCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
    ],
    targets: [
        // System libraries.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZMQ", path: "Sources/CZMQ", providers: [.apt(["libzmq3-dev"])]),
        // Float16 <-> Float32 conversion with F16C; compiled separately so only this target needs the flag.
        .target(name: "CHalf", path: "Sources/CHalf", cSettings: [.unsafeFlags(["-mf16c", "-O3"])]),
        // Elementwise kernels (dropout's Philox, ReLU): baseline ISA, AVX2 dropout picked at run time.
        .target(name: "CKernels", path: "Sources/CKernels", cSettings: [.unsafeFlags(["-O3"])]),

        // Tensor core -> model -> training -> distributed -> executables. Each target declares
        // exactly the modules it imports.
        .target(name: "TensorCore", dependencies: ["CBLAS", "CHalf", "CKernels"], swiftSettings: fastMath),
        .target(name: "TransformerModel", dependencies: ["TensorCore", "CKernels"], swiftSettings: fastMath),
        .target(
            name: "Training", dependencies: ["TransformerModel", "TensorCore", "CKernels"], swiftSettings: fastMath),
        .target(
            name: "Distributed", dependencies: ["Training", "TransformerModel", "TensorCore", "CZMQ"],
            swiftSettings: fastMath),

        .executableTarget(
            name: "CoordinatorCLI",
            dependencies: [
                "Distributed", "Training", "TensorCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "WorkerCLI",
            dependencies: [
                "Distributed", "Training", "TensorCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "TransformerCLI",
            dependencies: [
                "Distributed", "Training", "TransformerModel", "TensorCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // Fuzz targets for every decoder of outside bytes; Scripts/fuzz builds FuzzCLI with libFuzzer.
        .target(name: "FuzzTargets", dependencies: ["Distributed", "Training", "TransformerModel", "TensorCore"]),
        .executableTarget(name: "FuzzCLI", dependencies: ["FuzzTargets", "Distributed"]),

        // Tests mirror the modules; fixtures live in the target that reads them. CommandLineTests
        // starts the built executables as separate processes (end to end); TestSupport holds what
        // more than one test target uses.
        .target(
            name: "TestSupport", dependencies: ["Training", "TransformerModel", "TensorCore"], path: "Tests/TestSupport"
        ),
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore", "CKernels"]),
        .testTarget(name: "TransformerModelTests", dependencies: ["TransformerModel", "TensorCore", "CKernels"]),
        .testTarget(
            name: "TrainingTests", dependencies: ["Training", "TransformerModel", "TensorCore", "TestSupport"],
            exclude: ["Fixtures"]),
        .testTarget(
            name: "DistributedTests",
            dependencies: ["Distributed", "Training", "TransformerModel", "TensorCore", "TestSupport"]),
        .testTarget(name: "FuzzTargetsTests", dependencies: ["FuzzTargets", "Distributed"], exclude: ["FuzzCorpus"]),
        .testTarget(name: "CommandLineTests", dependencies: ["Training", "TransformerModel", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
