import Foundation
import SegTTT

/// A dataset named on the command line as `KIND:PATH`, or a folder holding `classes.json`:
///
///     camvid:PATH  camvid-day:PATH  camvid-dusk:PATH       CamVid test split (SegNet layout)
///     cityscapes:PATH                                      Cityscapes val, 19 classes
///     gta5:PATH  synthia:PATH  synthia13:PATH              GTA5; SYNTHIA-RAND-CITYSCAPES, 16 or 13 classes
///     nthu-rome:PATH (rio, tokyo, taipei)                  NTHU cross-city test split, 13 classes
///     acdc:PATH  acdc-fog:PATH (night, rain, snow)         ACDC val, all conditions or one
///     folder:PATH  or just PATH                            images/ + labels/ + classes.json
///     synthetic:STYLE[:COUNT[:SEED]]                       built-in street scenes (no files)
///
/// Synthetic streams default to 100 frames and seed 2, scenes the built-in source model
/// never saw in training (it was trained on seed 1).
public struct DatasetSpec: Equatable, Sendable, CustomStringConvertible {
    public let text: String

    public init(_ text: String) {
        self.text = text
    }

    public var description: String { text }

    /// The kinds that take a path, for help texts.
    public static let kinds =
        "camvid, camvid-day, camvid-dusk, cityscapes, gta5, synthia, synthia13, nthu-rome, nthu-rio, "
        + "nthu-tokyo, nthu-taipei, acdc, acdc-fog, acdc-night, acdc-rain, acdc-snow, folder; or synthetic:STYLE"

    /// Opens the dataset.
    ///
    /// - Parameter requireLabels: whether every frame needs a label (evaluation and training).
    /// - Throws: `ToolError` for an unknown kind; the readers' errors (which name the path and
    ///   the layout they expect) for a path of the wrong layout.
    public func open(requireLabels: Bool = true) throws -> any SegmentationDataset {
        let (kind, rest) = split()
        let root = URL(fileURLWithPath: (rest as NSString).expandingTildeInPath)
        switch kind {
        case "camvid": return try CamVid(root: root)
        case "camvid-day": return try CamVid(root: root, sequence: .day)
        case "camvid-dusk": return try CamVid(root: root, sequence: .dusk)
        case "cityscapes": return try Cityscapes(root: root, requireLabels: requireLabels)
        case "gta5": return try GTA5(root: root, requireLabels: requireLabels)
        case "synthia": return try SYNTHIA(root: root, labelProtocol: .synthia16, requireLabels: requireLabels)
        case "synthia13": return try SYNTHIA(root: root, labelProtocol: .synthia13, requireLabels: requireLabels)
        case "acdc": return try ACDC(root: root, requireLabels: requireLabels)
        case "folder": return try FolderDataset(root: root, requireLabels: requireLabels)
        case "synthetic": return try synthetic(rest)
        default:
            if kind.hasPrefix("nthu-"), let city = NTHUCrossCity.City.allCases.first(where: {
                $0.rawValue.lowercased() == kind.dropFirst(5)
            }) {
                return try NTHUCrossCity(root: root, city: city, requireLabels: requireLabels)
            }
            if kind.hasPrefix("acdc-"), let condition = ACDC.Condition(rawValue: String(kind.dropFirst(5))) {
                return try ACDC(root: root, conditions: [condition], requireLabels: requireLabels)
            }
            throw ToolError(
                "unknown dataset kind '\(kind)' in --dataset \(text); use KIND:PATH with KIND one of \(Self.kinds), "
                    + "or the path of a folder with classes.json")
        }
    }

    /// (kind, rest): "camvid:/data/camvid" -> ("camvid", "/data/camvid"); a bare path -> ("folder", path).
    private func split() -> (String, String) {
        if let colon = text.firstIndex(of: ":") {
            let kind = text[..<colon].lowercased()
            if !kind.contains("/") { return (kind, String(text[text.index(after: colon)...])) }
        }
        return ("folder", text)
    }

    private func synthetic(_ arguments: String) throws -> SyntheticStreets {
        let parts = arguments.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard (1...3).contains(parts.count), let style = StreetStyle(rawValue: parts[0]) else {
            throw ToolError(
                "--dataset \(text): expected synthetic:STYLE[:COUNT[:SEED]] with STYLE one of \(StreetStyle.validNames)")
        }
        guard let count = parts.count > 1 ? Int(parts[1]) : 100, count > 0 else {
            throw ToolError("--dataset \(text): the frame count must be a positive integer")
        }
        guard let seed = parts.count > 2 ? UInt64(parts[2]) : 2 else {
            throw ToolError("--dataset \(text): the seed must be a non-negative integer")
        }
        return try SyntheticStreets(style: style, count: count, seed: seed)
    }
}
