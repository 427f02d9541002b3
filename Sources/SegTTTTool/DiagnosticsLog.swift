import Foundation
import SegTTT

/// `diagnostics.jsonl`: one JSON object per frame, {"frame": i, "entropy": ..., "histogram":
/// [...], "drift": ..., "gradient_norms": {...}, "reset": ..., "disagreement": ...}
/// (`AdaptationDiagnostics`; disagreement only with the drift monitor), flushed per line.
/// On resume, lines of frames at or after the saved position are dropped first.
final class DiagnosticsLog {
    /// One line: the frame's index and its `AdaptationDiagnostics.Frame` fields, side by side.
    private struct Line: Encodable {
        var frame: Int
        var diagnostics: AdaptationDiagnostics.Frame

        private enum CodingKeys: String, CodingKey { case frame }

        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(frame, forKey: .frame)
            try diagnostics.encode(to: encoder)
        }
    }

    /// What resuming reads of a line: its frame index.
    private struct FrameIndex: Decodable {
        var frame: Int
    }

    private let diagnostics: AdaptationDiagnostics
    private let handle: FileHandle
    private let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }()

    init(url: URL, method: any TestTimeMethod, resumeAt position: Int?) throws {
        diagnostics = try AdaptationDiagnostics(observing: method)
        var kept = Data()
        if let position, let existing = FileManager.default.contents(atPath: url.path) {
            let decoder = JSONDecoder()
            for line in existing.split(separator: UInt8(ascii: "\n")) {
                guard let parsed = try? decoder.decode(FrameIndex.self, from: Data(line)), parsed.frame < position
                else { continue }
                kept.append(contentsOf: line + [UInt8(ascii: "\n")])
            }
        }
        try kept.write(to: url, options: .atomic)
        handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
    }

    deinit { try? handle.close() }

    func append(frame index: Int, _ result: FrameResult) throws {
        let line = Line(frame: index, diagnostics: try diagnostics.frame(result))
        try handle.write(contentsOf: try encoder.encode(line) + [UInt8(ascii: "\n")])
    }
}
