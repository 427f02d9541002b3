import Foundation

// Python's pickle format, protocols 2 to 5 (PEP 307, PEP 3154, PEP 574; the opcodes are
// documented in CPython's Lib/pickletools.py). A pickle is a program for a small stack
// machine: opcodes push values, build containers from the values above a MARK, store and
// fetch values in a memo, and name Python globals to call. This machine executes nothing
// itself: every global, call, persistent id and BUILD goes to a `PickleHost`, which allows
// exactly the names it knows and rejects the rest.

/// A module-level Python name a pickle refers to: a class or a function.
struct PickleGlobal: Hashable, CustomStringConvertible {
    /// The module, e.g. `torch._utils`.
    let module: String
    /// The name inside the module, e.g. `_rebuild_tensor_v2`.
    let name: String

    var description: String { "\(module).\(name)" }
}

/// One Python value as the pickle machine holds it.
///
/// Tuples, lists and dicts live in a `PickleHeap` and values refer to them by index, so
/// values never nest: a deeply nested or cyclic pickle cannot exhaust the stack when freed,
/// and a list filled after it was memoized is seen filled through every reference, as in Python.
enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer outside `Int`'s range, as LONG1 and LONG4 store it: little-endian two's complement.
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes(Data)
    /// Index into `PickleHeap.tuples`.
    case tuple(Int)
    /// Index into `PickleHeap.lists`.
    case list(Int)
    /// Index into `PickleHeap.dicts`.
    case dict(Int)
    /// A global the host allowed.
    case global(PickleGlobal)
    /// Something the host made from a call or a persistent id, by the host's own index.
    case object(Int)

    /// What kind of value this is, for error messages (never its contents, which may be cyclic).
    var kind: String {
        switch self {
        case .none: return "None"
        case .bool: return "a bool"
        case .int, .bigInt: return "an int"
        case .float: return "a float"
        case .string: return "a str"
        case .bytes: return "a bytes"
        case .tuple: return "a tuple"
        case .list: return "a list"
        case .dict: return "a dict"
        case .global(let global): return "the global \(global)"
        case .object: return "an object"
        }
    }

    /// The text of a str, or of an ASCII bytes (Python 2 pickles may hold those for str).
    var text: String? {
        switch self {
        case .string(let text): return text
        case .bytes(let bytes): return String(data: bytes, encoding: .ascii)
        default: return nil
        }
    }
}

/// A Python dict: entries in insertion order, with str and int keys kept unique as in Python.
struct PickleDict {
    private(set) var entries: [(key: PickleValue, value: PickleValue)] = []
    private var positions: [Key: Int] = [:]

    /// The keys whose equality this dict tracks; other keys (tuples, floats) are appended.
    private enum Key: Hashable {
        case string(String)
        case int(Int)
    }

    /// Sets `key` to `value`, replacing the value of an equal str or int key.
    mutating func set(_ value: PickleValue, for key: PickleValue) {
        let hashable: Key?
        switch key {
        case .string(let text): hashable = .string(text)
        case .int(let number): hashable = .int(number)
        case .bool(let flag): hashable = .int(flag ? 1 : 0)
        default: hashable = nil
        }
        if let hashable, let position = positions[hashable] {
            entries[position].value = value
            return
        }
        if let hashable { positions[hashable] = entries.count }
        entries.append((key, value))
    }

    /// The value of a str key.
    subscript(key: String) -> PickleValue? {
        positions[.string(key)].map { entries[$0].value }
    }
}

/// The tuples, lists and dicts made while unpickling, which `PickleValue`s refer to by index.
final class PickleHeap {
    private(set) var tuples: [[PickleValue]] = []
    private(set) var lists: [[PickleValue]] = []
    private(set) var dicts: [PickleDict] = []

    func makeTuple(_ items: [PickleValue]) -> PickleValue {
        tuples.append(items)
        return .tuple(tuples.count - 1)
    }

    func makeList(_ items: [PickleValue]) -> PickleValue {
        lists.append(items)
        return .list(lists.count - 1)
    }

    func makeDict(_ dict: PickleDict = PickleDict()) -> PickleValue {
        dicts.append(dict)
        return .dict(dicts.count - 1)
    }

    /// The items of a tuple or a list (both are sequences to the callers here); nil for other values.
    func sequence(_ value: PickleValue) -> [PickleValue]? {
        switch value {
        case .tuple(let index): return tuples[index]
        case .list(let index): return lists[index]
        default: return nil
        }
    }

    /// The dict a value refers to; nil for other values.
    func dict(_ value: PickleValue) -> PickleDict? {
        if case .dict(let index) = value { return dicts[index] }
        return nil
    }

    /// Appends to a list in place (APPEND, APPENDS); false when `value` is no list.
    func append(_ items: [PickleValue], to value: PickleValue) -> Bool {
        guard case .list(let index) = value else { return false }
        lists[index].append(contentsOf: items)
        return true
    }

    /// Sets items of a dict in place (SETITEM, SETITEMS); false when `value` is no dict.
    func set(_ pairs: [(key: PickleValue, value: PickleValue)], in value: PickleValue) -> Bool {
        guard case .dict(let index) = value else { return false }
        for pair in pairs { dicts[index].set(pair.value, for: pair.key) }
        return true
    }
}

/// What a pickle may refer to beyond plain data. The machine asks its host about every
/// global, call, persistent id and BUILD, so the host decides which Python names exist.
/// Hosts throw `FormatError`s that say what was refused.
protocol PickleHost: AnyObject {
    /// Checks a GLOBAL or STACK_GLOBAL; throws for names that are not allowed.
    func allow(_ global: PickleGlobal) throws
    /// The result of calling an allowed global (REDUCE; NEWOBJ of a class, `cls.__new__(cls, *args)`).
    func call(_ callable: PickleGlobal, arguments: [PickleValue], heap: PickleHeap) throws -> PickleValue
    /// The object a persistent id (BINPERSID) stands for.
    func persistentLoad(_ id: PickleValue, heap: PickleHeap) throws -> PickleValue
    /// `object` after BUILD with `state` (Python's `__setstate__`, or an update of `__dict__`).
    func build(_ object: PickleValue, state: PickleValue, heap: PickleHeap) throws -> PickleValue
}

/// The pickle stack machine. It never traps on bad input: a truncated or malformed pickle,
/// an unknown opcode or a stack underflow throws a `FormatError` naming the byte offset.
struct PickleMachine {
    /// One unpickled value with the heap its containers live in, and where its pickle ended.
    struct Result {
        let value: PickleValue
        let heap: PickleHeap
        /// Offset just past the STOP opcode, where a following pickle would start.
        let end: Int
    }

    /// The first byte of every pickle of protocol 2 or later (PROTO).
    static let protocolOpcode = Opcode.proto.rawValue

    /// Runs the pickle that starts `offset` bytes into `data`, up to its STOP opcode.
    static func load(_ data: Data, at offset: Int = 0, host: PickleHost) throws -> Result {
        var machine = PickleMachine(data: data, position: offset, host: host)
        let value = try machine.run()
        return Result(value: value, heap: machine.heap, end: machine.position)
    }

    private let data: Data
    private var position: Int
    private let host: PickleHost
    private let heap = PickleHeap()
    private var stack: [PickleValue] = []
    /// Stack heights at each open MARK.
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]
    /// Where the opcode being run starts, for error messages.
    private var opcodeStart = 0

    private init(data: Data, position: Int, host: PickleHost) {
        self.data = data
        self.position = position
        self.host = host
    }

    /// The opcodes this machine runs, named after pickletools' names. Protocol 0 text opcodes
    /// (other than GLOBAL, which protocols 2 and 3 still use), sets, extension registries and
    /// out-of-band buffers are refused as unknown: `torch.save` never writes them.
    private enum Opcode: UInt8 {
        case mark = 0x28  // (
        case stop = 0x2E  // .
        case pop = 0x30  // 0
        case popMark = 0x31  // 1
        case dup = 0x32  // 2
        case binFloat = 0x47  // G: 8-byte big-endian double
        case binInt = 0x4A  // J: 4-byte signed
        case binInt1 = 0x4B  // K: 1-byte unsigned
        case binInt2 = 0x4D  // M: 2-byte unsigned
        case none = 0x4E  // N
        case binPersId = 0x51  // Q
        case reduce = 0x52  // R
        case binString = 0x54  // T: 4-byte length, Python 2 str
        case shortBinString = 0x55  // U: 1-byte length, Python 2 str
        case binUnicode = 0x58  // X: 4-byte length, UTF-8
        case binBytes = 0x42  // B: 4-byte length
        case shortBinBytes = 0x43  // C: 1-byte length
        case emptyList = 0x5D  // ]
        case append = 0x61  // a
        case build = 0x62  // b
        case global = 0x63  // c: module and name, each ending in a newline
        case appends = 0x65  // e
        case binGet = 0x68  // h: 1-byte memo index
        case longBinGet = 0x6A  // j: 4-byte memo index
        case list = 0x6C  // l
        case binPut = 0x71  // q: 1-byte memo index
        case longBinPut = 0x72  // r: 4-byte memo index
        case setItem = 0x73  // s
        case tuple = 0x74  // t
        case setItems = 0x75  // u
        case dict = 0x64  // d
        case emptyDict = 0x7D  // }
        case emptyTuple = 0x29  // )
        case proto = 0x80
        case newObj = 0x81
        case tuple1 = 0x85
        case tuple2 = 0x86
        case tuple3 = 0x87
        case newTrue = 0x88
        case newFalse = 0x89
        case long1 = 0x8A  // 1-byte length, little-endian two's complement
        case long4 = 0x8B  // 4-byte length
        case shortBinUnicode = 0x8C  // 1-byte length
        case binUnicode8 = 0x8D  // 8-byte length
        case binBytes8 = 0x8E  // 8-byte length
        case stackGlobal = 0x93
        case memoize = 0x94
        case frame = 0x95  // 8-byte frame length; framing only groups reads
        case byteArray8 = 0x96  // 8-byte length
    }

    /// Runs opcodes up to STOP and returns the value it pops.
    ///
    /// Compiled without optimisation: Swift 6.3.1's optimiser miscompiles this loop into a
    /// use-after-free of a value's storage (found by fuzzing; docs/FUZZING.md, finding 3).
    /// A pickle of a state dict is a few thousand opcodes, so the cost does not show.
    @_optimize(none)
    private mutating func run() throws -> PickleValue {
        while true {
            opcodeStart = position
            let code = try readByte()
            guard let opcode = Opcode(rawValue: code) else {
                let printable = (0x21...0x7E).contains(code) ? " ('\(Character(Unicode.Scalar(code)))')" : ""
                throw failure("unknown or unsupported opcode 0x\(String(code, radix: 16))\(printable)")
            }
            switch opcode {
            case .proto:
                let version = try readByte()
                guard (2...5).contains(version) else { throw failure("unsupported pickle protocol \(version)") }
            case .frame:
                let length = try readLength(8)
                guard length <= data.count - position else {
                    throw failure("a frame of \(length) bytes runs past the end")
                }
            case .stop:
                return try pop()
            case .mark:
                marks.append(stack.count)
            case .pop:
                _ = try pop()
            case .popMark:
                _ = try popMark()
            case .dup:
                let top = try pop()
                stack.append(top)
                stack.append(top)

            case .binInt:
                stack.append(.int(Int(Int32(truncatingIfNeeded: try readUInt(4)))))
            case .binInt1:
                stack.append(.int(Int(try readByte())))
            case .binInt2:
                stack.append(.int(Int(try readUInt(2))))
            case .long1:
                stack.append(try readLong(byteCount: try readLength(1)))
            case .long4:
                let length = Int32(truncatingIfNeeded: try readUInt(4))
                guard length >= 0 else { throw failure("negative length \(length)") }
                stack.append(try readLong(byteCount: Int(length)))
            case .binFloat:
                stack.append(.float(Double(bitPattern: try readUInt(8).byteSwapped)))
            case .none:
                stack.append(.none)
            case .newTrue:
                stack.append(.bool(true))
            case .newFalse:
                stack.append(.bool(false))

            case .binUnicode:
                stack.append(.string(try readText(length: try readLength(4))))
            case .shortBinUnicode:
                stack.append(.string(try readText(length: try readLength(1))))
            case .binUnicode8:
                stack.append(.string(try readText(length: try readLength(8))))
            case .binString:
                let length = Int32(truncatingIfNeeded: try readUInt(4))
                guard length >= 0 else { throw failure("negative length \(length)") }
                stack.append(try readPython2String(length: Int(length)))
            case .shortBinString:
                stack.append(try readPython2String(length: try readLength(1)))
            case .binBytes:
                stack.append(.bytes(try readBytes(try readLength(4))))
            case .shortBinBytes:
                stack.append(.bytes(try readBytes(try readLength(1))))
            case .binBytes8, .byteArray8:
                stack.append(.bytes(try readBytes(try readLength(8))))

            case .emptyTuple:
                stack.append(heap.makeTuple([]))
            case .tuple1, .tuple2, .tuple3:
                let count = Int(code - Opcode.tuple1.rawValue) + 1
                stack.append(heap.makeTuple(try pop(count)))
            case .tuple:
                stack.append(heap.makeTuple(try popMark()))
            case .emptyList:
                stack.append(heap.makeList([]))
            case .list:
                stack.append(heap.makeList(try popMark()))
            case .append:
                let item = try pop()
                try append([item])
            case .appends:
                try append(try popMark())
            case .emptyDict:
                stack.append(heap.makeDict())
            case .dict:
                var dict = PickleDict()
                for (key, value) in try pairs(try popMark()) { dict.set(value, for: key) }
                stack.append(heap.makeDict(dict))
            case .setItem:
                let value = try pop()
                let key = try pop()
                try setItems([(key, value)])
            case .setItems:
                try setItems(try pairs(try popMark()))

            case .binPut:
                try put(Int(try readByte()))
            case .longBinPut:
                try put(Int(try readUInt(4)))
            case .memoize:
                try put(memo.count)
            case .binGet:
                try get(Int(try readByte()))
            case .longBinGet:
                try get(Int(try readUInt(4)))

            case .global:
                let module = try readLine()
                let name = try readLine()
                try pushGlobal(PickleGlobal(module: module, name: name))
            case .stackGlobal:
                let name = try pop()
                let module = try pop()
                guard case .string(let moduleName) = module, case .string(let globalName) = name else {
                    throw failure("STACK_GLOBAL needs two str, got \(module.kind) and \(name.kind)")
                }
                try pushGlobal(PickleGlobal(module: moduleName, name: globalName))
            case .reduce, .newObj:
                let arguments = try pop()
                let callable = try pop()
                guard case .global(let global) = callable else {
                    throw failure("calls \(callable.kind), not a global")
                }
                guard case .tuple(let index) = arguments else {
                    throw failure("calls \(global) with \(arguments.kind) instead of an argument tuple")
                }
                stack.append(try host.call(global, arguments: heap.tuples[index], heap: heap))
            case .build:
                let state = try pop()
                let object = try pop()
                stack.append(try host.build(object, state: state, heap: heap))
            case .binPersId:
                let id = try pop()
                stack.append(try host.persistentLoad(id, heap: heap))
            }
        }
    }

    // MARK: stack

    private func failure(_ reason: String) -> FormatError {
        let name = data.bytes(at: opcodeStart, count: 1).flatMap { $0.first }.flatMap { Opcode(rawValue: $0) }
        let context = name.map { " (\($0))".uppercased() } ?? ""
        return FormatError("malformed pickle at byte \(opcodeStart)\(context): \(reason)")
    }

    /// Pops the top value; the values below an open MARK cannot be reached, as in Python.
    private mutating func pop() throws -> PickleValue {
        guard stack.count > (marks.last ?? 0), let top = stack.popLast() else { throw failure("the stack is empty") }
        return top
    }

    /// Pops the top `count` values, deepest first.
    private mutating func pop(_ count: Int) throws -> [PickleValue] {
        guard stack.count - (marks.last ?? 0) >= count else { throw failure("needs \(count) values on the stack") }
        defer { stack.removeLast(count) }
        return Array(stack.suffix(count))
    }

    /// Pops the values above the last MARK, and the MARK.
    private mutating func popMark() throws -> [PickleValue] {
        guard let mark = marks.popLast() else { throw failure("no MARK is open") }
        defer { stack.removeSubrange(mark...) }
        return Array(stack[mark...])
    }

    private func pairs(_ items: [PickleValue]) throws -> [(key: PickleValue, value: PickleValue)] {
        guard items.count % 2 == 0 else {
            throw failure("a dict needs keys and values in pairs, got \(items.count) items")
        }
        return stride(from: 0, to: items.count, by: 2).map { (items[$0], items[$0 + 1]) }
    }

    private mutating func append(_ items: [PickleValue]) throws {
        let target = try pop()
        guard heap.append(items, to: target) else { throw failure("appends to \(target.kind), not a list") }
        stack.append(target)
    }

    private mutating func setItems(_ pairs: [(key: PickleValue, value: PickleValue)]) throws {
        let target = try pop()
        guard heap.set(pairs, in: target) else { throw failure("sets items of \(target.kind), not a dict") }
        stack.append(target)
    }

    private mutating func put(_ index: Int) throws {
        guard let top = stack.last, stack.count > (marks.last ?? 0) else { throw failure("the stack is empty") }
        memo[index] = top
    }

    private mutating func get(_ index: Int) throws {
        guard let value = memo[index] else { throw failure("memo entry \(index) was never stored") }
        stack.append(value)
    }

    private mutating func pushGlobal(_ global: PickleGlobal) throws {
        try host.allow(global)
        stack.append(.global(global))
    }

    // MARK: reading operands

    private mutating func readBytes(_ count: Int) throws -> Data {
        guard let bytes = data.bytes(at: position, count: count) else {
            throw failure(
                "needs \(count) bytes but \(Swift.max(0, data.count - position)) remain; the file may be truncated")
        }
        position += count
        return bytes
    }

    private mutating func readByte() throws -> UInt8 {
        guard let byte = data.littleEndian(UInt8.self, at: position) else {
            throw failure("the pickle ends before its STOP opcode; the file may be truncated")
        }
        position += 1
        return byte
    }

    /// A little-endian unsigned integer of `size` bytes (1 to 8).
    private mutating func readUInt(_ size: Int) throws -> UInt64 {
        let bytes = try readBytes(size)
        return bytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }

    /// A little-endian unsigned length of `size` bytes, which must fit in `Int`.
    private mutating func readLength(_ size: Int) throws -> Int {
        let value = try readUInt(size)
        guard let length = Int(exactly: value) else { throw failure("length \(value) is too large") }
        return length
    }

    /// A LONG1 or LONG4 operand: little-endian two's complement of `byteCount` bytes.
    private mutating func readLong(byteCount: Int) throws -> PickleValue {
        let bytes = [UInt8](try readBytes(byteCount))
        guard let last = bytes.last else { return .int(0) }
        let sign: UInt8 = last & 0x80 == 0 ? 0x00 : 0xFF
        // Bytes past the eighth that only repeat the sign do not change the value.
        if bytes.dropFirst(8).allSatisfy({ $0 == sign }) {
            let low = bytes.prefix(8) + [UInt8](repeating: sign, count: Swift.max(0, 8 - bytes.count))
            let bits = low.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let value = Int64(bitPattern: bits)
            // The eighth byte's sign must agree with the dropped bytes' sign.
            if bytes.count <= 8 || (value < 0) == (sign == 0xFF) { return .int(Int(value)) }
        }
        return .bigInt(bytes)
    }

    private mutating func readText(length: Int) throws -> String {
        let bytes = try readBytes(length)
        guard let text = String(data: bytes, encoding: .utf8) else { throw failure("a str is not valid UTF-8") }
        return text
    }

    /// A Python 2 str: decoded as UTF-8 as `torch.load` does, else kept as bytes.
    private mutating func readPython2String(length: Int) throws -> PickleValue {
        let bytes = try readBytes(length)
        return String(data: bytes, encoding: .utf8).map(PickleValue.string) ?? .bytes(bytes)
    }

    /// A GLOBAL operand: ASCII up to a newline.
    private mutating func readLine() throws -> String {
        let start = position
        while try readByte() != UInt8(ascii: "\n") {}
        guard
            let line = data.bytes(at: start, count: position - 1 - start).flatMap({ String(data: $0, encoding: .ascii) }
            )
        else { throw failure("a global's name is not ASCII") }
        return line
    }
}
