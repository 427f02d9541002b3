import SegTTTReports
import XCTest

final class TextTableTests: XCTestCase {
    let results = TextTable(
        header: ["method", "mIoU", "frames"], rows: [["source", "45.2", "233"], ["tent", "51.30", "1000"]])

    func testTerminalAlignsNamesLeftAndNumbersRightUnderARule() {
        XCTAssertEqual(
            results.terminal(),
            """
            method   mIoU  frames
            ------  -----  ------
            source   45.2     233
            tent    51.30    1000
            """)
    }

    func testTerminalPadsShortRowsAndLeavesNoTrailingSpaces() {
        let table = TextTable(header: ["a", "name"], rows: [["1", "x"], ["22"]], alignments: [.right, .left])
        XCTAssertEqual(
            table.terminal(),
            """
             a  name
            --  ----
             1  x
            22
            """)
    }

    func testMarkdownMarksAlignmentAndEscapesPipes() {
        let table = TextTable(header: ["name", "value"], rows: [["a|b", "1"], ["two\nlines", "22"]])
        XCTAssertEqual(
            table.markdown(),
            """
            | name         | value |
            | :----------- | ----: |
            | a\\|b         |     1 |
            | two<br>lines |    22 |
            """)
    }

    func testMarkdownColumnsAreAtLeastThreeWide() {
        let table = TextTable(header: ["x", "y"], rows: [["1", "2"]])
        XCTAssertEqual(table.markdown(), "| x   |   y |\n| :-- | --: |\n| 1   |   2 |")
    }

    func testDefaultAlignmentIsFirstLeftRestRight() {
        XCTAssertEqual(results.alignments, [.left, .right, .right])
    }
}
