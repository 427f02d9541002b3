import Foundation

/// Progress of a long loop, in the manner of tqdm, written to standard error by default.
///
/// On a terminal one line, 100 characters wide, is redrawn in place (at most ten times a
/// second, and at the end); with a shorter bar:
///
///     tent  42% |████▏     | 98/233 [00:41<00:56, 2.39 frame/s] mIoU 51.3
///
/// Elsewhere (a log file, CI) a plain line without bar or carriage return is printed each time
/// another tenth of the total is done, and at the end. Speed and time left count only the
/// items done since this bar was made, so a resumed run (`startAt` > 0) reports its own pace.
public final class ProgressBar {
    public let total: Int
    public let label: String
    /// What one item is called in the speed, e.g. "frame" in "2.39 frame/s".
    public let unit: String
    /// Whether the line is redrawn in place (a terminal) or printed anew (a log).
    public let interactive: Bool
    /// Items already done before this bar was made.
    public let startAt: Int

    /// Width of the interactive line, in characters.
    public static let width = 100
    /// Shortest time between two redraws of the interactive line, in seconds.
    static let redrawInterval = 0.1

    let output: FileHandle
    let started = ProcessInfo.processInfo.systemUptime
    var done: Int
    var lastDrawn: TimeInterval?
    /// Characters of the last interactive line, to blank what a shorter line leaves behind.
    var drawnWidth = 0
    /// The tenth of the total last printed in a log, and what that print showed.
    var printedTenth: Int
    var printedState: [String]?
    var finished = false

    /// - Parameters:
    ///   - total: the number of items in all, including those done before `startAt`.
    ///   - label: shown first on the line, e.g. the method's name.
    ///   - output: where lines go.
    ///   - interactive: redraw in place; nil decides by whether `output` is a terminal.
    ///   - startAt: items done before this bar was made (a resumed run).
    ///   - unit: what one item is called.
    public init(
        total: Int, label: String, output: FileHandle = .standardError, interactive: Bool? = nil, startAt: Int = 0,
        unit: String = "frame"
    ) {
        self.total = total
        self.label = label
        self.output = output
        self.interactive = interactive ?? (isatty(output.fileDescriptor) != 0)
        self.startAt = startAt
        self.unit = unit
        done = startAt
        printedTenth = Self.tenth(of: startAt, total: total)
    }

    /// Reports that `done` items of `total` are done; `fields` (name, value) follow the speed,
    /// e.g. ("mIoU", "51.3").
    public func update(done: Int, fields: [(String, String)]) {
        guard !finished else { return }
        self.done = done
        let now = ProcessInfo.processInfo.systemUptime
        if interactive {
            if done >= total || lastDrawn.map({ now - $0 >= Self.redrawInterval }) ?? true {
                redraw(fields: fields, at: now)
            }
        } else {
            let tenth = Self.tenth(of: done, total: total)
            if tenth > printedTenth {
                printedTenth = tenth
                printLine(fields: fields, at: now)
            }
        }
    }

    /// Shows the final state (the last `done` reported) with `fields` and ends the line. In a
    /// log the final line is left out when the last printed line already showed it.
    public func finish(fields: [(String, String)]) {
        guard !finished else { return }
        finished = true
        let now = ProcessInfo.processInfo.systemUptime
        if interactive {
            redraw(fields: fields, at: now)
            write("\n")
        } else if printedState != Self.state(done: done, fields: fields) {
            printLine(fields: fields, at: now)
        }
    }

    func redraw(fields: [(String, String)], at now: TimeInterval) {
        let text = Self.line(
            label: label, done: done, total: total, elapsed: now - started, fields: fields, width: Self.width,
            startAt: startAt, unit: unit)
        let blank = String(repeating: " ", count: Swift.max(0, drawnWidth - text.count))
        write("\r" + text + blank)
        drawnWidth = text.count
        lastDrawn = now
    }

    func printLine(fields: [(String, String)], at now: TimeInterval) {
        let text = Self.plainLine(
            label: label, done: done, total: total, elapsed: now - started, fields: fields, startAt: startAt,
            unit: unit)
        write(text + "\n")
        printedState = Self.state(done: done, fields: fields)
    }

    func write(_ text: String) {
        // Progress is a courtesy: a closed or full output must not stop the work.
        try? output.write(contentsOf: Data(text.utf8))
    }

    /// What a log line shows besides the times, to tell whether the final line adds anything.
    static func state(done: Int, fields: [(String, String)]) -> [String] {
        [String(done)] + fields.map { "\($0) \($1)" }
    }

    /// How many whole tenths of `total` `done` is (10 when all is done or there is nothing).
    static func tenth(of done: Int, total: Int) -> Int {
        total > 0 ? Swift.min(10, Swift.max(0, done) * 10 / total) : 10
    }

    // MARK: formatting

    /// The interactive line: label, percentage, bar, count, times, speed and fields, the bar
    /// (at least 10 characters) filling the line to `width` characters. A line that is longer
    /// even with the shortest bar is cut at `width` characters.
    ///
    /// - Parameters:
    ///   - elapsed: seconds since the bar was made.
    ///   - startAt: items done before then, left out of the speed.
    public static func line(
        label: String, done: Int, total: Int, elapsed: Double, fields: [(String, String)], width: Int,
        startAt: Int = 0, unit: String = "frame"
    ) -> String {
        let fraction = total > 0 ? Swift.min(1, Swift.max(0, Double(done) / Double(total))) : 1
        let head = "\(label) \(percent(fraction)) |"
        let tail =
            "| " + status(done: done, total: total, elapsed: elapsed, fields: fields, startAt: startAt, unit: unit)
        let barWidth = Swift.max(10, width - head.count - tail.count)
        let text = head + bar(fraction, width: barWidth) + tail
        return text.count > width ? String(text.prefix(width)) : text
    }

    /// The log line: as `line` without the bar, never cut.
    public static func plainLine(
        label: String, done: Int, total: Int, elapsed: Double, fields: [(String, String)], startAt: Int = 0,
        unit: String = "frame"
    ) -> String {
        let fraction = total > 0 ? Swift.min(1, Swift.max(0, Double(done) / Double(total))) : 1
        return "\(label) \(percent(fraction)) "
            + status(done: done, total: total, elapsed: elapsed, fields: fields, startAt: startAt, unit: unit)
    }

    /// A time span as mm:ss, or h:mm:ss from an hour on, whole seconds rounded down; "?" when
    /// it is not a finite, non-negative number.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0, seconds < Double(Int.max) else { return "?" }
        let whole = Int(seconds)
        let (hours, minutes, rest) = (whole / 3600, whole / 60 % 60, whole % 60)
        let clock = String(format: "%02d:%02d", minutes, rest)
        return hours > 0 ? "\(hours):" + clock : clock
    }

    /// e.g. " 42%": the whole percentage, rounded down, right-aligned in three digits.
    static func percent(_ fraction: Double) -> String {
        String(format: "%3d%%", Int((fraction * 100).rounded(.down)))
    }

    /// e.g. "98/233 [00:41<00:56, 2.39 frame/s] mIoU 51.3": the count, elapsed and remaining
    /// time, speed (or seconds per item below one item a second), then the fields.
    static func status(
        done: Int, total: Int, elapsed: Double, fields: [(String, String)], startAt: Int, unit: String
    ) -> String {
        let rate = elapsed > 0 && done > startAt ? Double(done - startAt) / elapsed : nil
        let remaining = rate.map { duration(Double(Swift.max(0, total - done)) / $0) } ?? "?"
        let speed: String
        if let rate {
            speed =
                rate >= 1
                ? String(format: "%.2f", rate) + " \(unit)/s" : String(format: "%.2f", 1 / rate) + " s/\(unit)"
        } else {
            speed = "? \(unit)/s"
        }
        let extra = fields.map { "\($0) \($1)" }.joined(separator: "  ")
        return "\(done)/\(total) [\(duration(elapsed))<\(remaining), \(speed)]" + (extra.isEmpty ? "" : " " + extra)
    }

    /// A bar `width` characters wide, filled `fraction` of the way in eighths of a character.
    static func bar(_ fraction: Double, width: Int) -> String {
        let eighths = Int((fraction * Double(width) * 8).rounded(.down))
        let partials = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]
        let full = Swift.min(width, eighths / 8)
        let filled = String(repeating: "█", count: full) + (full < width ? partials[eighths % 8] : "")
        return filled + String(repeating: " ", count: width - filled.count)
    }
}
