import Foundation
import TorchNN
import SegTTT

/// Why a frame log could not be opened, resumed or written: names the file and says what to do.
public struct FrameLogError: Error, CustomStringConvertible, LocalizedError, Equatable {
    /// The log file's path.
    public let file: String
    /// The whole text: file, what is wrong, and the fix.
    public let message: String

    public init(file: String, problem: String, fix: String) {
        self.file = file
        message = "\(file): \(problem); \(fix)"
    }

    public var description: String { message }
    public var errorDescription: String? { message }
}

/// A CSV file with one row per processed frame, for plots and spreadsheets.
///
/// Columns: `frame`, `name`, one column per loss term in the order given, `frame_miou`,
/// `running_miou` (both in percent with four decimals, empty without a label), `seconds`,
/// `non_finite_loss` (`true` or `false`). Cells holding a comma, quote or line break are
/// quoted as RFC 4180 says; rows end with a line feed. Each row is written to the file as it
/// is appended, so a run that is killed keeps the rows of the frames it finished.
public final class FrameLog {
    public let url: URL
    public let lossNames: [String]
    /// The header row.
    public let columns: [String]
    private var handle: FileHandle?

    /// The header of a log with these loss columns.
    public static func columns(lossNames: [String]) -> [String] {
        ["frame", "name"] + lossNames + ["frame_miou", "running_miou", "seconds", "non_finite_loss"]
    }

    /// Starts a log at `url`, replacing any file there; or, with `resumeAt`, continues the log
    /// of a run resumed at frame `position`: an existing file keeps its header and the rows of
    /// frames before `position` (rows written after the state the run resumes from are
    /// dropped, as is a last row cut short), and new rows follow them. Without an existing
    /// file a new one is started.
    ///
    /// - Throws: `FrameLogError` when the existing file's header is not the one this log
    ///   writes (another method or other loss terms), or the file cannot be read or written.
    public init(url: URL, lossNames: [String], resumeAt position: Int? = nil) throws {
        self.url = url
        self.lossNames = lossNames
        columns = Self.columns(lossNames: lossNames)
        let header = Self.row(columns)
        var contents = Data(header.utf8)
        if let position, FileManager.default.fileExists(atPath: url.path) {
            contents.append(try keptRows(before: position, header: header))
        }
        do {
            try contents.write(to: url, options: .atomic)
            let handle = try FileHandle(forWritingTo: url)
            try handle.seekToEnd()
            self.handle = handle
        } catch {
            throw FrameLogError(
                file: url.path, problem: "cannot be written (\(FileFailure.reason(error)))",
                fix: "check that its folder exists and is writable")
        }
    }

    deinit {
        close()
    }

    /// The rows of the existing file for frames before `position`, as they are written there.
    private func keptRows(before position: Int, header: String) throws -> Data {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw FrameLogError(
                file: url.path, problem: "cannot be read to resume (\(FileFailure.reason(error)))",
                fix: "check its permissions, or start a fresh output folder")
        }
        let records = CSV.records(in: [UInt8](data)).filter(\.complete)
        guard let first = records.first else { return Data() }
        guard first.fields == columns else {
            throw FrameLogError(
                file: url.path,
                problem: "has the columns \(first.fields.joined(separator: ",")) but this run writes "
                    + columns.joined(separator: ","),
                fix: "start a fresh output folder for a run with another method or other loss terms")
        }
        var kept = Data()
        for record in records.dropFirst() {
            guard let frame = record.fields.first.flatMap({ Int($0) }), frame < position else { continue }
            kept.append(data[record.range])
        }
        return kept
    }

    /// Writes the row of `record`; `runningIoU` is the mIoU of the stream so far in 0...1
    /// (nil, or NaN, leaves the cell empty).
    public func append(_ record: FrameRecord, runningIoU: Double?) throws {
        guard let handle else {
            throw FrameLogError(
                file: url.path, problem: "is closed", fix: "append rows before closing the frame log")
        }
        var cells = [String(record.index), record.name]
        cells += lossNames.map { name in record.losses[name].map { String(format: "%.6g", $0) } ?? "" }
        cells += [
            Self.percent(record.frameIoU), Self.percent(runningIoU), String(format: "%.4f", record.seconds),
            record.nonFiniteLoss ? "true" : "false",
        ]
        do {
            try handle.write(contentsOf: Data(Self.row(cells).utf8))
        } catch {
            throw FrameLogError(
                file: url.path, problem: "cannot be written (\(FileFailure.reason(error)))",
                fix: "check the free space and permissions of its folder")
        }
    }

    /// Closes the file; later appends throw.
    public func close() {
        try? handle?.close()
        handle = nil
    }

    /// The rows of a frame log (or any CSV file with a header) as column name → cell text.
    /// Cells past the header's columns are left out, missing ones are absent.
    public static func read(_ url: URL) throws -> [[String: String]] {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw FrameLogError(
                file: url.path, problem: "cannot be read (\(FileFailure.reason(error)))",
                fix: "check the path and its permissions")
        }
        let records = CSV.records(in: [UInt8](data))
        guard let header = records.first?.fields else { return [] }
        return records.dropFirst().map { record in
            Dictionary(zip(header, record.fields), uniquingKeysWith: { first, _ in first })
        }
    }

    /// A value in 0...1 as a percentage with four decimals; empty for nil or NaN.
    static func percent(_ value: Double?) -> String {
        guard let value, !value.isNaN else { return "" }
        return String(format: "%.4f", value * 100)
    }

    /// One CSV line (with its line feed).
    static func row(_ cells: [String]) -> String {
        cells.map(CSV.quoted).joined(separator: ",") + "\n"
    }
}
