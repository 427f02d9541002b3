import ArgumentParser
import Foundation
import Torch
import XCTest

@testable import SegTTTTool

/// Runs `segttt ARGUMENTS` in this process, as `main` would, returning the error it ends with.
/// libtorch's thread count and the denormal mode are process-wide; what a command sets is
/// undone afterwards.
func runTool(_ arguments: [String]) -> Error? {
    let (threads, flushes) = (Runtime.numThreads, Runtime.flushesDenormals)
    defer {
        Runtime.numThreads = threads
        Runtime.flushesDenormals = flushes
    }
    do {
        var command = try SegTTTCommand.parseAsRoot(arguments)
        try command.run()
        return nil
    } catch {
        return error
    }
}

/// The message and exit code `segttt` would print and return for `error`.
func report(_ error: Error?) -> (message: String, code: Int32) {
    guard let error else { return ("", 0) }
    return (SegTTTCommand.fullMessage(for: error), SegTTTCommand.exitCode(for: error).rawValue)
}

/// A fresh temporary folder, removed when the test ends.
func temporaryFolder(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("segttt-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

struct MissingResource: Error, CustomStringConvertible {
    var description: String { "Sources/SegTTTTool/Resources/synthetic-espnet.safetensors is missing from the bundle" }
}

/// The shipped demo model, which every end-to-end test adapts (its absence fails the test).
func shippedModel() throws -> URL {
    guard let url = Demo.shippedModel else { throw MissingResource() }
    return url
}

/// ../shared/data beside the repository, or a skip.
func sharedData() throws -> URL {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/data")
    guard FileManager.default.fileExists(atPath: root.path) else {
        throw XCTSkip("\(root.path) is absent; the tests on real data need ../shared/data beside the repository")
    }
    return root
}

/// The segttt executable built beside the test bundle (`swift build --build-tests` builds it), or a skip.
func builtTool() throws -> URL {
    var folder = Bundle.main.bundleURL
    for _ in 0..<3 {
        let candidate = folder.appendingPathComponent("segttt")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        folder = folder.deletingLastPathComponent()
    }
    throw XCTSkip("no segttt executable beside \(Bundle.main.bundleURL.path); build it with swift build")
}
