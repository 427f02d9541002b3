import Foundation
import SegTTT

/// `diagnostics.jsonl`: one JSON object per frame, {"frame": i, "entropy": ..., "histogram":
/// [...], "drift": ..., "gradient_norms": {...}, "reset": ..., "disagreement": ...}
/// (`AdaptationDiagnostics`; disagreement only with the drift monitor), flushed per line.
/// On resume, lines of frames at or after the saved position are dropped first.
final class DiagnosticsLog {
    private struct Line: Codable {
        var frame: Int
        var entropy: Double
        var histogram: [Double]
        var drift: Double
        var gradientNorms: [String: Double]
        var reset: Bool
        var disagreement: Double?

        enum CodingKeys: String, CodingKey {
            case frame, entropy, histogram, drift, reset, disagreement
            case gradientNorms = "gradient_norms"
        }
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

    init(url: URL, method: AdaptationMethod, resumeAt position: Int?) throws {
        diagnostics = try AdaptationDiagnostics(observing: method)
        var kept = Data()
        if let position, let existing = FileManager.default.contents(atPath: url.path) {
            let decoder = JSONDecoder()
            decoder.nonConformingFloatDecodingStrategy = .convertFromString(
                positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            for line in existing.split(separator: UInt8(ascii: "\n")) {
                guard let parsed = try? decoder.decode(Line.self, from: Data(line)), parsed.frame < position else { continue }
                kept.append(contentsOf: line + [UInt8(ascii: "\n")])
            }
        }
        try kept.write(to: url, options: .atomic)
        handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
    }

    deinit { try? handle.close() }

    func append(frame index: Int, _ result: FrameResult) throws {
        let frame = try diagnostics.frame(result)
        let line = Line(
            frame: index, entropy: frame.entropy, histogram: frame.histogram, drift: frame.drift,
            gradientNorms: frame.gradientNorms, reset: frame.reset, disagreement: frame.disagreement)
        try handle.write(contentsOf: try encoder.encode(line) + [UInt8(ascii: "\n")])
    }
}
