import Foundation

/// Comma-separated values as RFC 4180 defines them: fields holding a comma, a double quote
/// or a line break are enclosed in double quotes, with each quote inside doubled.
enum CSV {
    /// One record of a CSV text: its fields, the bytes it spans (its line break included), and
    /// whether a line break ends it (false for a last line cut short).
    struct Record {
        var fields: [String]
        var range: Range<Int>
        var complete: Bool
    }

    /// `field` as it is written in a CSV line: quoted when it must be.
    static func quoted(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) else {
            return field
        }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// The records of UTF-8 CSV text; lines end with LF or CRLF, and a line break inside quotes
    /// belongs to the field. Invalid UTF-8 is decoded with replacement characters.
    static func records(in bytes: [UInt8]) -> [Record] {
        let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ","), lineFeed = UInt8(ascii: "\n")
        let carriageReturn = UInt8(ascii: "\r")
        var records: [Record] = []
        var fields: [String] = []
        var field: [UInt8] = []
        var inQuotes = false
        var start = 0
        var position = 0
        func endField() {
            fields.append(String(decoding: field, as: UTF8.self))
            field = []
        }
        while position < bytes.count {
            let byte = bytes[position]
            if inQuotes {
                if byte == quote {
                    // A doubled quote is a quote in the field; a single one ends the quoting.
                    if position + 1 < bytes.count && bytes[position + 1] == quote {
                        field.append(quote)
                        position += 1
                    } else {
                        inQuotes = false
                    }
                } else {
                    field.append(byte)
                }
            } else if byte == quote {
                inQuotes = true
            } else if byte == comma {
                endField()
            } else if byte == lineFeed {
                endField()
                records.append(Record(fields: fields, range: start..<(position + 1), complete: true))
                fields = []
                start = position + 1
            } else if byte == carriageReturn && position + 1 < bytes.count && bytes[position + 1] == lineFeed {
                // The CR of a CRLF line end; the LF ends the record.
            } else {
                field.append(byte)
            }
            position += 1
        }
        if start < bytes.count {
            endField()
            records.append(Record(fields: fields, range: start..<bytes.count, complete: false))
        }
        return records
    }
}
