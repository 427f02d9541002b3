import Foundation

/// A table of text cells, laid out for a terminal or as a GitHub Markdown table.
///
/// Rows shorter than the widest row are padded with empty cells. Column widths count
/// characters (grapheme clusters), which matches a monospaced terminal for the Latin text,
/// digits and symbols of result tables.
public struct TextTable {
    /// How a column's cells sit in its width.
    public enum Alignment {
        case left, right
    }

    public var header: [String]
    public var rows: [[String]]
    /// One alignment per column; columns without one are aligned as by default.
    public var alignments: [Alignment]

    /// A table whose columns are aligned as `alignments` says, or by default the first
    /// (names) left and the others (numbers) right.
    public init(header: [String], rows: [[String]], alignments: [Alignment]? = nil) {
        self.header = header
        self.rows = rows
        self.alignments = alignments ?? header.indices.map { $0 == 0 ? .left : .right }
    }

    /// Columns separated by two spaces, a rule of dashes under the header, no trailing
    /// spaces, lines joined by newlines (none after the last).
    public func terminal() -> String {
        let table = [header] + rows
        let widths = columnWidths(of: table)
        let lines = table.map { cells in
            (0..<widths.count).map { padded(cell(cells, $0), to: widths[$0], alignment(of: $0)) }
                .joined(separator: "  ")
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
        return ([lines[0], rule] + lines.dropFirst()).map(trimmingTrailingSpaces).joined(separator: "\n")
    }

    /// A GitHub Markdown table: cells padded to their column's width, the marker row
    /// `:---` for left and `---:` for right alignment, pipes in cells escaped as `\|` and line
    /// breaks written `<br>`; lines joined by newlines (none after the last).
    public func markdown() -> String {
        let table = ([header] + rows).map { $0.map(Self.markdownCell) }
        let widths = columnWidths(of: table).map { Swift.max($0, 3) }
        let lines = table.map { cells in
            "| "
                + (0..<widths.count).map { padded(cell(cells, $0), to: widths[$0], alignment(of: $0)) }
                .joined(separator: " | ") + " |"
        }
        let markers = widths.indices.map { column -> String in
            let dashes = String(repeating: "-", count: widths[column] - 1)
            return alignment(of: column) == .left ? ":" + dashes : dashes + ":"
        }
        let markerLine = "| " + markers.joined(separator: " | ") + " |"
        return ([lines[0], markerLine] + lines.dropFirst()).joined(separator: "\n")
    }

    // MARK: layout

    /// The widest cell of each column, over as many columns as the widest row has.
    func columnWidths(of table: [[String]]) -> [Int] {
        let columns = table.map(\.count).max() ?? 0
        return (0..<columns).map { column in table.map { cell($0, column).count }.max() ?? 0 }
    }

    /// Cell `column` of `cells`, empty past the row's end.
    func cell(_ cells: [String], _ column: Int) -> String {
        column < cells.count ? cells[column] : ""
    }

    func alignment(of column: Int) -> Alignment {
        column < alignments.count ? alignments[column] : (column == 0 ? .left : .right)
    }

    /// `text` filled with spaces to `width` characters, on the right for left alignment.
    func padded(_ text: String, to width: Int, _ alignment: Alignment) -> String {
        let fill = String(repeating: " ", count: Swift.max(0, width - text.count))
        return alignment == .left ? text + fill : fill + text
    }

    func trimmingTrailingSpaces(_ line: String) -> String {
        String(line.reversed().drop(while: { $0 == " " }).reversed())
    }

    /// A cell's text as Markdown table syntax allows it.
    static func markdownCell(_ text: String) -> String {
        text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\r\n", with: "<br>")
            .replacingOccurrences(of: "\n", with: "<br>")
    }
}
