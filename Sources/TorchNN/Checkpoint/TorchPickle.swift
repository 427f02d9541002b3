import Foundation
import Torch

/// Reads the two layouts of `torch.save` (PyTorch's torch/serialization.py) into a state dict.
///
/// Both pickle the saved object with tensors written as calls of
/// `torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
/// backward_hooks)` (or the older `_rebuild_tensor(storage, storage_offset, size, stride)`),
/// where each storage is a persistent id: a tuple naming the storage's class (which gives
/// its dtype), its key and its element count. The raw storages lie outside the pickle:
/// - zip (PyTorch >= 1.6): the pickle is `<prefix>/data.pkl` and storage `key` is the
///   entry `<prefix>/data/<key>`; ids are `('storage', type, key, location, numel)`.
/// - legacy: five pickles in a row - the magic number 0x1950a86a20f9469cfc6c, the protocol
///   version 1001, a system-info dict, the object, and the list of storage keys - then for
///   each key in that order an int64 element count and the storage's bytes; ids are
///   `('storage', type, key, location, numel, view_metadata)`, where `view_metadata` is None
///   or `(view_key, offset, size)` for a storage that is a slice of another.
/// Storages are read as little-endian and placed on the CPU whatever device they were saved from.
enum TorchPickle {
    /// `torch.serialization.MAGIC_NUMBER` as a LONG1 operand: 10 bytes, little-endian.
    static let legacyMagic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
    /// `torch.serialization.PROTOCOL_VERSION` of the legacy layout.
    static let legacyProtocolVersion = 1001

    /// Whether the data opens with the legacy layout's first pickle, the magic number.
    static func startsWithLegacyMagic(_ data: Data) -> Bool {
        guard data.first == PickleMachine.protocolOpcode,
            let magic = try? PickleMachine.load(data, host: TorchPickleHost())
        else { return false }
        if case .bigInt(let bytes) = magic.value { return bytes == legacyMagic }
        return false
    }

    /// Reads a checkpoint in the zip layout.
    static func loadZip(_ data: Data) throws -> StateDict {
        let archive = try ZipArchive(data)
        // The pickle is `<prefix>/data.pkl` for one top-level folder, whose name varies
        // (`archive`, or the file's name in early versions).
        guard
            let pickle = archive.entries.first(where: {
                $0.name.hasSuffix("/data.pkl") && $0.name.split(separator: "/").count == 2
            })
        else {
            throw FormatError("a zip archive without <prefix>/data.pkl, so not a checkpoint written by torch.save")
        }
        let prefix = String(pickle.name.dropLast("data.pkl".count))
        if let order = archive.entry(named: prefix + "byteorder") {
            let text = String(data: try archive.contents(of: order), encoding: .ascii)
            guard text == "little" else {
                throw FormatError(
                    "its storages are \(text ?? "?")-endian; only little-endian checkpoints are supported")
            }
        }
        let host = TorchPickleHost()
        let object = try PickleMachine.load(try archive.contents(of: pickle), host: host)
        return try host.stateDict(from: object) { key, declared in
            guard let entry = archive.entry(named: prefix + "data/" + key) else {
                throw FormatError("storage '\(key)' has no entry \(prefix)data/\(key) in the archive")
            }
            let bytes = try archive.contents(of: entry)
            guard bytes.count >= declared.byteCount else {
                throw FormatError(
                    "storage '\(key)' holds \(bytes.count) bytes where the pickle declares \(declared.byteCount)")
            }
            return bytes
        }
    }

    /// Reads a checkpoint in the legacy layout.
    static func loadLegacy(_ data: Data) throws -> StateDict {
        let host = TorchPickleHost()
        let magic = try PickleMachine.load(data, host: host)
        guard case .bigInt(let bytes) = magic.value, bytes == legacyMagic else {
            throw FormatError("the legacy layout's magic number is missing")
        }
        let version = try PickleMachine.load(data, at: magic.end, host: host)
        guard case .int(legacyProtocolVersion) = version.value else {
            throw FormatError("the legacy layout's protocol version is not \(legacyProtocolVersion)")
        }
        let systemInfo = try PickleMachine.load(data, at: version.end, host: host)
        if case .bool(false)? = systemInfo.heap.dict(systemInfo.value)?["little_endian"] {
            throw FormatError("it was saved on a big-endian machine; only little-endian checkpoints are supported")
        }
        let object = try PickleMachine.load(data, at: systemInfo.end, host: host)
        let keyList = try PickleMachine.load(data, at: object.end, host: host)
        guard let keyValues = keyList.heap.sequence(keyList.value) else {
            throw FormatError("the legacy storage key list is \(keyList.value.kind), not a list")
        }

        // The storages follow in the listed order, each as an int64 element count and its bytes.
        var storages: [String: Data] = [:]
        var position = keyList.end
        for value in keyValues {
            guard let key = value.text, let declared = host.storages[key] else {
                throw FormatError("the legacy storage list names a storage the pickle never uses")
            }
            guard let count = data.littleEndian(UInt64.self, at: position).map({ Int64(bitPattern: $0) }) else {
                throw FormatError("the data of storage '\(key)' is missing; the file may be truncated")
            }
            guard count == declared.count else {
                throw FormatError(
                    "storage '\(key)' holds \(count) elements where the pickle declares \(declared.count)")
            }
            guard let bytes = data.bytes(at: position + 8, count: declared.byteCount) else {
                throw FormatError("the data of storage '\(key)' is cut short; the file may be truncated")
            }
            storages[key] = bytes
            position += 8 + declared.byteCount
        }
        return try host.stateDict(from: object) { key, _ in
            guard let bytes = storages[key] else {
                throw FormatError("storage '\(key)' is missing from the legacy storage list")
            }
            return bytes
        }
    }
}

/// A storage as a persistent id declares it: its key, dtype and element count.
struct StorageDeclaration: Equatable {
    let dtype: DType
    let count: Int
    /// `count` elements of `dtype` (checked not to overflow when the id was read).
    let byteCount: Int
}

/// A storage as a tensor sees it: a root storage, or (legacy views) a slice of one.
struct StorageView {
    let key: String
    let dtype: DType
    /// First element of the slice in the root storage.
    let offset: Int
    /// Elements in the slice.
    let count: Int
}

/// A tensor as `_rebuild_tensor_v2` describes it: a strided view of a storage.
struct TensorReference {
    let storage: StorageView
    /// First element of the view in the storage slice.
    let offset: Int
    let shape: [Int]
    /// In elements.
    let strides: [Int]
}

/// The PyTorch side of unpickling a checkpoint: the only globals it allows are the ones
/// `torch.save` writes for tensors, storages and state dicts, and it builds no tensor until
/// the storages are found (in the legacy layout they follow the pickle).
final class TorchPickleHost: PickleHost {
    /// What a pickled value stands for beyond plain data.
    enum Object {
        case storage(StorageView)
        case tensor(TensorReference)
    }

    /// The storage classes of persistent ids, by the dtype they hold.
    static let storageTypes: [String: DType] = [
        "FloatStorage": .float32, "DoubleStorage": .float64, "HalfStorage": .float16, "BFloat16Storage": .bfloat16,
        "LongStorage": .int64, "IntStorage": .int32, "ShortStorage": .int16, "CharStorage": .int8,
        "ByteStorage": .uint8, "BoolStorage": .bool,
    ]
    private static let orderedDict = PickleGlobal(module: "collections", name: "OrderedDict")
    private static let rebuildTensor = PickleGlobal(module: "torch._utils", name: "_rebuild_tensor")
    private static let rebuildTensorV2 = PickleGlobal(module: "torch._utils", name: "_rebuild_tensor_v2")
    private static let rebuildParameter = PickleGlobal(module: "torch._utils", name: "_rebuild_parameter")
    /// Most bytes a tensor whose elements overlap in its storage (an expanded one, stride 0)
    /// is copied out to: a few stored bytes could otherwise ask for gigabytes.
    static let largestExpandedCopy = 1 << 28

    /// Objects by the index in `PickleValue.object`.
    private(set) var objects: [Object] = []
    /// Root storages by key, as their persistent ids declare them.
    private(set) var storages: [String: StorageDeclaration] = [:]

    func allow(_ global: PickleGlobal) throws {
        let isStorage = global.module == "torch" && Self.storageTypes[global.name] != nil
        let known = [Self.orderedDict, Self.rebuildTensor, Self.rebuildTensorV2, Self.rebuildParameter]
        guard isStorage || known.contains(global) else {
            throw FormatError(
                "the pickle refers to the Python global '\(global)', which a state-dict reader does not run "
                    + "(only tensors, storages and OrderedDict are allowed); if the file holds a whole model or "
                    + "a TorchScript module, load it in Python and save model.state_dict() instead")
        }
    }

    func call(_ callable: PickleGlobal, arguments: [PickleValue], heap: PickleHeap) throws -> PickleValue {
        switch callable {
        case Self.orderedDict:
            // OrderedDict() or OrderedDict([(key, value), ...]).
            var dict = PickleDict()
            guard arguments.count <= 1 else {
                throw FormatError("OrderedDict is called with \(arguments.count) arguments")
            }
            for pair in try arguments.first.map({ try sequence($0, heap, "OrderedDict's items") }) ?? [] {
                let items = try sequence(pair, heap, "an OrderedDict item")
                guard items.count == 2 else { throw FormatError("an OrderedDict item has \(items.count) parts, not 2") }
                dict.set(items[1], for: items[0])
            }
            return heap.makeDict(dict)
        case Self.rebuildTensor, Self.rebuildTensorV2:
            // v2 adds requires_grad and backward_hooks (and, since PyTorch 2, metadata); none matter here.
            let counts = callable == Self.rebuildTensor ? 4...4 : 6...7
            guard counts.contains(arguments.count) else {
                throw FormatError("\(callable) is called with \(arguments.count) arguments, not \(counts)")
            }
            guard case .object(let index) = arguments[0], case .storage(let storage) = objects[index] else {
                throw FormatError("\(callable) is given \(arguments[0].kind) instead of a storage")
            }
            let tensor = TensorReference(
                storage: storage, offset: try integer(arguments[1], "a storage offset"),
                shape: try integers(arguments[2], heap, "a size"), strides: try integers(arguments[3], heap, "a stride")
            )
            objects.append(.tensor(tensor))
            return .object(objects.count - 1)
        case Self.rebuildParameter:
            // _rebuild_parameter(data, requires_grad, backward_hooks): an nn.Parameter is its tensor here.
            guard arguments.count == 3, case .object(let index) = arguments[0], case .tensor = objects[index] else {
                throw FormatError("\(callable) is not given a tensor and two more arguments")
            }
            return arguments[0]
        default:
            throw FormatError("the pickle calls \(callable), which is not a function")
        }
    }

    func persistentLoad(_ id: PickleValue, heap: PickleHeap) throws -> PickleValue {
        let parts = try sequence(id, heap, "a persistent id")
        guard let typename = parts.first?.text else {
            throw FormatError("a persistent id does not start with its kind")
        }
        if typename == "module" {
            throw FormatError(
                "it holds a pickled nn.Module, not a state dict; load it in Python and save model.state_dict() instead")
        }
        guard typename == "storage", parts.count == 5 || parts.count == 6 else {
            throw FormatError("unknown persistent id '\(typename)' with \(parts.count) parts")
        }
        guard case .global(let type) = parts[1], let dtype = Self.storageTypes[type.name] else {
            throw FormatError("a storage's type is \(parts[1].kind), not a storage class")
        }
        guard let key = parts[2].text else { throw FormatError("a storage's key is \(parts[2].kind), not a str") }
        let count = try integer(parts[4], "a storage's element count")
        guard case (let byteCount, false) = count.multipliedReportingOverflow(by: dtype.byteSize) else {
            throw FormatError("storage '\(key)' declares \(count) elements, too many for any file")
        }
        let declaration = StorageDeclaration(dtype: dtype, count: count, byteCount: byteCount)
        if let earlier = storages[key], earlier != declaration {
            throw FormatError("storage '\(key)' is declared twice, differently")
        }
        storages[key] = declaration

        var view = StorageView(key: key, dtype: dtype, offset: 0, count: count)
        let viewMetadata = parts.count == 6 ? parts[5] : .none
        if case .none = viewMetadata {
            // The root storage itself.
        } else {
            // A legacy view of the root storage: (view_key, offset, size), in elements.
            let metadata = try sequence(viewMetadata, heap, "a storage view")
            guard metadata.count == 3 else {
                throw FormatError("storage '\(key)' has a view description of \(metadata.count) parts")
            }
            let offset = try integer(metadata[1], "a storage view offset")
            let size = try integer(metadata[2], "a storage view size")
            guard offset <= count, size <= count - offset else {
                throw FormatError("a view of \(size) elements at \(offset) lies outside storage '\(key)' of \(count)")
            }
            view = StorageView(key: key, dtype: dtype, offset: offset, count: size)
        }
        objects.append(.storage(view))
        return .object(objects.count - 1)
    }

    func build(_ object: PickleValue, state: PickleValue, heap: PickleHeap) throws -> PickleValue {
        // An OrderedDict state dict carries its `_metadata` (module versions) as attributes.
        guard case .dict = object else { throw FormatError("the pickle sets the state of \(object.kind)") }
        return object
    }

    // MARK: the state dict

    /// The tensors of the unpickled object, in order, with their storages' bytes looked up by
    /// `storageBytes(key, declaration)` (which gives at least `declaration.byteCount` bytes).
    func stateDict(
        from object: PickleMachine.Result, storageBytes: (String, StorageDeclaration) throws -> Data
    ) throws -> StateDict {
        let heap = object.heap
        guard var dict = heap.dict(object.value) else {
            throw FormatError("the saved object is \(object.value.kind), not a dict of tensors")
        }
        // Training checkpoints keep the weights under one key, next to an epoch or an optimizer.
        for key in ["state_dict", "model_state_dict"] {
            if let inner = dict[key].flatMap(heap.dict) {
                dict = inner
                break
            }
        }
        var tensors = StateDict()
        var bytesByKey: [String: Data] = [:]
        for (key, value) in dict.entries {
            guard case .string(let name) = key, case .object(let index) = value,
                case .tensor(let reference) = objects[index]
            else {
                continue
            }
            let storage = reference.storage
            if bytesByKey[storage.key] == nil, let declaration = storages[storage.key] {
                bytesByKey[storage.key] = try storageBytes(storage.key, declaration)
            }
            guard let bytes = bytesByKey[storage.key] else { throw FormatError("tensor '\(name)' has no storage") }
            tensors[name] = try makeTensor(reference, from: bytes, name: name)
        }
        if tensors.count == 0 && !dict.entries.isEmpty {
            let keys = dict.entries.prefix(10).map { $0.key.text ?? $0.key.kind }.joined(separator: ", ")
            throw FormatError("the saved dict holds no tensors at its top level (its keys: \(keys))")
        }
        return tensors
    }

    /// Copies the elements a tensor views out of its root storage's bytes.
    private func makeTensor(_ reference: TensorReference, from bytes: Data, name: String) throws -> Tensor {
        let storage = reference.storage
        let (shape, strides) = (reference.shape, reference.strides)
        func fail(_ reason: String) -> FormatError { FormatError("tensor '\(name)': \(reason)") }
        // Sizes, strides and the offset were checked to be >= 0 when unpickled.
        guard shape.count == strides.count else { throw fail("size \(shape) and stride \(strides) differ in length") }
        if shape.contains(0) {
            do {
                return try Tensor.zeros(shape, dtype: storage.dtype)
            } catch let error as TorchError {
                throw fail(error.message)
            }
        }
        // The view reaches elements offset ... offset + span - 1 of the storage slice.
        var span = 1
        for (size, step) in zip(shape, strides) {
            let (reach, overflow) = (size - 1).multipliedReportingOverflow(by: step)
            guard !overflow, case (let sum, false) = span.addingReportingOverflow(reach) else {
                throw fail("size \(shape) with stride \(strides) is too large")
            }
            span = sum
        }
        guard reference.offset <= storage.count, span <= storage.count - reference.offset else {
            throw fail(
                "size \(shape), stride \(strides) and offset \(reference.offset) reach past the "
                    + "\(storage.count) elements of storage '\(storage.key)'")
        }
        let element = storage.dtype.byteSize
        // A dense copy is at most `span` elements unless elements overlap; those may not grow past the limit.
        guard let copyBytes = ([element] + shape).checkedProduct(), copyBytes <= max(span * element, Self.largestExpandedCopy)
        else {
            throw fail(
                "size \(shape) with stride \(strides) repeats \(span) stored elements into a copy of more than "
                    + "\(Self.largestExpandedCopy >> 20) MiB; save the tensor with .contiguous() if it is meant "
                    + "to be that large")
        }
        let first = (storage.offset + reference.offset) * element
        // The declared storage fits in `bytes`, so neither product overflows. Copying gives
        // libtorch aligned elements (legacy storages start at any byte).
        let elements = [UInt8](bytes[bytes.startIndex + first..<bytes.startIndex + first + span * element])
        do {
            return try elements.withUnsafeBytes { raw in
                try Tensor(bytes: raw, shape: shape, strides: strides, dtype: storage.dtype)
            }
        } catch let error as TorchError {
            throw fail(error.message)
        }
    }

    // MARK: argument checks

    private func sequence(_ value: PickleValue, _ heap: PickleHeap, _ what: String) throws -> [PickleValue] {
        guard let items = heap.sequence(value) else { throw FormatError("\(what) is \(value.kind), not a tuple") }
        return items
    }

    private func integer(_ value: PickleValue, _ what: String) throws -> Int {
        guard case .int(let number) = value else { throw FormatError("\(what) is \(value.kind), not an int") }
        guard number >= 0 else { throw FormatError("\(what) is \(number), not >= 0") }
        return number
    }

    private func integers(_ value: PickleValue, _ heap: PickleHeap, _ what: String) throws -> [Int] {
        try sequence(value, heap, what).map { try integer($0, what) }
    }
}
