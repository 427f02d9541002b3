// swift-tools-version:5.10
//
// SegTTT: test-time training for semantic segmentation, in Swift on libtorch.
//
// libtorch is found from the `LIBTORCH` environment variable (a folder with `include/`
// and `lib/`: a downloaded libtorch, a PyTorch wheel's `torch/` folder, a CUDA build),
// and otherwise from Debian's `libtorch-dev` under /usr. `LIBTORCH_CUDA=0` links a CUDA
// build's CPU libraries only (libtorch_cpu, libc10), so that a PyPI wheel's `torch/` folder
// links and runs without the CUDA packages a GPU would need.
import Foundation
import PackageDescription

/// Where libtorch's headers and libraries live, and how it was compiled.
struct LibTorch {
    var includes: [String]
    var libDir: String
    var hasCUDA: Bool
    var cxx11ABI: Bool
    /// Whether libtorch.so is linked: PyTorch 2 keeps it as an empty library that needs
    /// libtorch_cuda, so a CPU-only link leaves it out.
    var linksTorch: Bool
    /// Whether SegTTT's kernels may call the oneDNN that libtorch runs: Debian's libtorch links
    /// the shared libdnnl, whose headers libdnnl-dev installs. A wheel's libtorch carries its
    /// own copy inside, which the kernels leave alone.
    var oneDNN = false

    static func locate() -> LibTorch {
        let env = ProcessInfo.processInfo.environment
        let fm = FileManager.default
        if let root = env["LIBTORCH"], !root.isEmpty {
            let lib = root + "/lib"
            // Official libtorch archives and wheels state their C++ ABI in TorchConfig.cmake.
            var abi = true
            if let flag = env["LIBTORCH_CXX11_ABI"] {
                abi = flag == "1"
            } else if let config = try? String(
                contentsOfFile: root + "/share/cmake/Torch/TorchConfig.cmake", encoding: .utf8),
                config.contains("_GLIBCXX_USE_CXX11_ABI=0")
            {
                abi = false
            }
            return LibTorch(
                includes: [root + "/include", root + "/include/torch/csrc/api/include"],
                libDir: lib,
                hasCUDA: env["LIBTORCH_CUDA"] != "0" && fm.fileExists(atPath: lib + "/libtorch_cuda.so"),
                cxx11ABI: abi, linksTorch: env["LIBTORCH_CUDA"] != "0")
        }
        let lib = "/usr/lib/x86_64-linux-gnu"
        return LibTorch(
            // /usr/include is searched already; naming it again breaks #include_next.
            includes: ["/usr/include/torch/csrc/api/include"],
            libDir: lib,
            hasCUDA: fm.fileExists(atPath: lib + "/libtorch_cuda.so"),
            cxx11ABI: true, linksTorch: true,
            oneDNN: fm.fileExists(atPath: "/usr/include/oneapi/dnnl/dnnl.hpp")
                && fm.fileExists(atPath: lib + "/libdnnl.so"))
    }

    /// The major version its headers declare (TORCH_VERSION_MAJOR), 1 when none says.
    var majorVersion: Int {
        let headers = ["torch/headeronly/version.h", "torch/version.h"]
        for folder in includes + ["/usr/include"] {
            for header in headers {
                guard let text = try? String(contentsOfFile: folder + "/" + header, encoding: .utf8) else { continue }
                for line in text.split(separator: "\n") where line.hasPrefix("#define TORCH_VERSION_MAJOR ") {
                    if let major = Int(line.split(separator: " ").last ?? "") { return major }
                }
            }
        }
        return 1
    }

    var cxxFlags: [String] {
        includes.flatMap { ["-isystem", $0] } + [
            "-D_GLIBCXX_USE_CXX11_ABI=\(cxx11ABI ? 1 : 0)", "-Wno-deprecated-declarations",
        ]
            + (hasCUDA ? ["-DCTORCH_WITH_CUDA=1"] : [])
    }

    var linkerFlags: [String] {
        // CUDA kernels register themselves from static constructors in libtorch_cuda, which
        // the linker would otherwise drop because no symbol of it is referenced directly.
        let cuda =
            hasCUDA ? ["-Xlinker", "--no-as-needed", "-ltorch_cuda", "-lc10_cuda", "-Xlinker", "--as-needed"] : []
        return ["-L" + libDir, "-Xlinker", "-rpath", "-Xlinker", libDir] + cuda + (linksTorch ? ["-ltorch"] : []) + ["-ltorch_cpu", "-lc10"]
    }
}

let torch = LibTorch.locate()

let package = Package(
    name: "SegTTT",
    products: [
        .library(name: "Torch", targets: ["Torch"]),
        .library(name: "SegTTTKernels", targets: ["SegTTTKernels"]),
        .library(name: "TorchNN", targets: ["TorchNN"]),
        .library(name: "SegTTT", targets: ["SegTTT"]),
        .executable(name: "segttt", targets: ["segttt"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // The C shim over libtorch: implementation detail, no stable API.
        .target(
            name: "CTorch",
            cxxSettings: [.unsafeFlags(torch.cxxFlags)],
            linkerSettings: [.unsafeFlags(torch.linkerFlags)]
        ),
        // libtorch's tensors, autograd and ops in Swift.
        .target(name: "Torch", dependencies: ["CTorch"]),
        // SegTTT's own CPU kernels (C++ over the shim's handles) and the rule for when each takes
        // a call from the libtorch op it stands in for (Sources/SegTTTKernels).
        // It reads the shim's headers by path rather than depending on CTorch: a C++ dependent
        // would be handed CTorch's module map, which clang refuses to use textually in C++20.
        // Optimised in debug builds too: the tests run whole networks through these kernels,
        // which unoptimised take several times oneDNN's time.
        .target(
            name: "CKernels",
            cxxSettings: [
                .unsafeFlags(torch.cxxFlags + ["-I", Context.packageDirectory + "/Sources/CTorch/include"]),
                .unsafeFlags(["-O2"], .when(configuration: .debug)),
                .define("CKERNELS_WITH_ONEDNN", to: torch.oneDNN ? "1" : "0"),
            ],
            linkerSettings: torch.oneDNN ? [.linkedLibrary("dnnl")] : []),
        .target(name: "SegTTTKernels", dependencies: ["Torch", "CKernels", "CTorch"]),
        // zlib's CRC-32, which checks each zip entry a checkpoint reader takes.
        .systemLibrary(name: "CZlib"),
        .target(name: "TorchNN", dependencies: ["Torch", "SegTTTKernels", "CZlib"]),
        // PNG and JPEG coding through Debian's libpng and libjpeg-turbo: implementation detail.
        .target(
            name: "CImageIO",
            linkerSettings: [.linkedLibrary("png"), .linkedLibrary("jpeg")]
        ),
        .target(
            name: "SegTTT",
            dependencies: ["TorchNN", "SegTTTKernels", "CImageIO", .product(name: "Yams", package: "Yams")]
        ),
        // Terminal and file reports: colour predictions, plots, tables, progress, CSV logs.
        .target(name: "SegTTTReports", dependencies: ["SegTTT"]),
        // The segttt command-line tool, as a library so that its commands can be tested.
        .target(
            name: "SegTTTTool",
            dependencies: [
                "SegTTT", "SegTTTKernels", "SegTTTReports", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ],
            resources: [.copy("Resources")]
        ),
        .executableTarget(name: "segttt", dependencies: ["SegTTTTool"]),
        .executableTarget(name: "op-overhead", dependencies: ["Torch"], path: "Benchmarks/OpOverhead"),
        .executableTarget(name: "forward-bench", dependencies: ["SegTTT"], path: "Benchmarks/Forward"),
        .executableTarget(name: "synthetic-shift", dependencies: ["SegTTT"], path: "Benchmarks/SyntheticShift"),
        .executableTarget(name: "prior-probe", dependencies: ["SegTTT"], path: "Benchmarks/PriorProbe"),
        .executableTarget(
            name: "segttt-bench", dependencies: ["SegTTT", "SegTTTKernels", "SegTTTReports"], path: "Benchmarks/Bench"),
        // The base class of the test cases that compute: the tool's process settings.
        .target(name: "TestSupport", dependencies: ["Torch"], path: "Tests/TestSupport"),
        .testTarget(name: "TorchTests", dependencies: ["Torch", "SegTTTKernels", "TorchNN", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "TorchNNTests", dependencies: ["TorchNN", "SegTTTKernels", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "SegTTTTests", dependencies: ["SegTTT", "SegTTTKernels", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "SegTTTReportsTests", dependencies: ["SegTTTReports"]),
        .testTarget(
            name: "SegTTTToolTests",
            dependencies: [
                "SegTTTTool", "SegTTTReports", "SegTTT", "Torch", "TestSupport", .product(name: "Yams", package: "Yams"),
            ],
            resources: [.copy("Fixtures")]),
    ],
    // libtorch 2 needs C++20; 1.13's headers do not compile as C++20.
    cxxLanguageStandard: torch.majorVersion >= 2 ? .cxx20 : .cxx17
)

// The libFuzzer target of Benchmarks/fuzz.sh, only when SEGTTT_FUZZ=1: it has no `main` of its
// own (libFuzzer's is linked in by -sanitize=fuzzer), so a plain build could not link it.
if ProcessInfo.processInfo.environment["SEGTTT_FUZZ"] == "1" {
    package.products.append(.executable(name: "segttt-fuzz", targets: ["segttt-fuzz"]))
    package.targets.append(
        .executableTarget(
            name: "segttt-fuzz", dependencies: ["TorchNN", "SegTTT"], path: "Benchmarks/Fuzz",
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
}
