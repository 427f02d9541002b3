import Foundation
import TestSupport
import XCTest

@testable import SegTTTTool

/// The bad-input corpus (Fixtures/BadInputs, written by Scripts/fixtures/bad_inputs.py):
/// every case ends with its exit status and a message naming the file or flag at fault,
/// never with a trap, a library's raw text or a changed earlier run.
final class BadInputTests: ConfiguredTestCase {
    struct Case: Decodable {
        let name: String
        let args: [String]
        let code: Int32
        let mentions: [String]
        let prior: Bool
    }

    /// Texts of Foundation's and libtorch's own errors, which must never reach the user.
    static let rawTexts = ["NSCocoaErrorDomain", "Error Domain=", "Code=", "c10::", "Exception raised from"]

    var corpus: URL {
        get throws {
            guard let url = Bundle.module.url(forResource: "Fixtures/BadInputs", withExtension: nil) else {
                throw XCTSkip("Fixtures/BadInputs is missing from the test bundle")
            }
            return url
        }
    }

    func cases() throws -> [Case] {
        try JSONDecoder().decode([Case].self, from: Data(contentsOf: try corpus.appendingPathComponent("cases.json")))
    }

    /// Every file under `folder` and its bytes.
    func snapshot(_ folder: URL) throws -> [String: Data] {
        var files: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.isRegularFileKey])
        while let url = enumerator?.nextObject() as? URL {
            guard try url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile == true else { continue }
            files[String(url.path.dropFirst(folder.path.count))] = try Data(contentsOf: url)
        }
        return files
    }

    func testCorpusHoldsAtLeastFortyCasesOfEveryKind() throws {
        let names = try cases().map(\.name)
        XCTAssertGreaterThanOrEqual(names.count, 40)
        XCTAssertEqual(Set(names).count, names.count, "case names repeat")
        for kind in ["image", "label", "classes", "safetensors", "zip", "legacy", "config", "flag", "resume"] {
            XCTAssertTrue(names.contains { $0.contains(kind) }, "no case of kind \(kind)")
        }
    }

    func testEveryCaseEndsWithItsStatusAndNamesTheFileOrFlag() throws {
        let corpus = try corpus
        let model = try shippedModel()
        let folder = try temporaryFolder(self)
        let pwned = URL(fileURLWithPath: "/tmp/segttt-pwned")
        try? FileManager.default.removeItem(at: pwned)

        // The finished run that "prior" cases find in their output folder.
        let template = folder.appendingPathComponent("template")
        let templateArgs = [
            "adapt", "--model", "espnet", "--checkpoint", model.path, "--method", "bn-prior", "--no-predictions",
            "--dataset", "synthetic:dusk:2:2", "--output", template.path,
        ]
        XCTAssertNil(runTool(templateArgs), "the template run failed")

        for testCase in try cases() {
            let out = folder.appendingPathComponent(testCase.name)
            if testCase.prior { try FileManager.default.copyItem(at: template, to: out) }
            let before = testCase.prior ? try snapshot(out) : [:]
            let arguments = testCase.args.map {
                $0.replacingOccurrences(of: "{corpus}", with: corpus.path)
                    .replacingOccurrences(of: "{model}", with: model.path)
                    .replacingOccurrences(of: "{good}", with: "folder:" + corpus.appendingPathComponent("good").path)
                    .replacingOccurrences(of: "{out}", with: out.path)
            }
            let (message, code) = report(runTool(arguments))
            let line = message.split(separator: "\n").first.map(String.init) ?? ""
            XCTAssertEqual(code, testCase.code, "\(testCase.name): exit status; message: \(message)")
            for mention in testCase.mentions {
                XCTAssertTrue(line.contains(mention), "\(testCase.name): '\(mention)' is not named in: \(line)")
            }
            for raw in Self.rawTexts {
                XCTAssertFalse(message.contains(raw), "\(testCase.name): library text '\(raw)' in: \(message)")
            }
            if testCase.prior {
                XCTAssertEqual(try snapshot(out), before, "\(testCase.name): the earlier run in --output changed")
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: pwned.path), "a hostile pickle ran its code")
    }
}
