import Foundation
internal import CTorch

/// Which part of a TorchScript forward pass's output holds the logits.
public enum ScriptOutput: Equatable, Sendable, CustomStringConvertible {
    /// The output is the tensor itself.
    case tensor
    /// Element i of a tuple or list (torchvision-style auxiliary heads, multi-output networks).
    case element(Int)
    /// The entry of a dict with this key (torchvision's segmentation models return "out").
    case key(String)

    public var description: String {
        switch self {
        case .tensor: return "tensor"
        case .element(let index): return "\(index)"
        case .key(let key): return key
        }
    }
}

/// A BatchNorm layer whose calls in a TorchScript forward graph `ScriptModule` hands to Swift.
public struct RedirectedBatchNorm: Equatable, Sendable {
    /// The layer's module path in the file, "backbone.bn1".
    public var path: String
    /// The eps and momentum its calls pass (traced graphs hold them as constants only).
    public var eps: Double
    public var momentum: Double
}

/// A module loaded from a file saved by `torch.jit.save` (a `torch.jit.script` or
/// `torch.jit.trace` result), with autograd: any architecture PyTorch can export.
///
/// One `ScriptModule` owns one shim handle. Its parameters and buffers are returned as
/// `Tensor`s that share the module's storage and autograd state: updating them in place (an
/// optimizer step, a restored snapshot) changes what the forward pass computes with.
public final class ScriptModule {
    let handle: OpaquePointer
    /// Where it was loaded from, for messages.
    public let url: URL
    private var redirect: BatchNormRedirect?

    /// Loads `url` on the CPU.
    ///
    /// - Throws: `TorchError` naming the file: not TorchScript, saved by a newer PyTorch than
    ///   this libtorch reads (both versions and the fix), no forward method.
    public init(contentsOf url: URL) throws {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw TorchError("\(url.path): no such file")
        }
        var out: OpaquePointer?
        try check(ct_script_module_load(url.path, &out))
        guard let out else { throw TorchError("libtorch returned no module for \(url.path)") }
        handle = out
        self.url = url
    }

    deinit {
        if let redirect { BatchNormRedirect.registry.remove(redirect.model) }
        ct_script_module_free(handle)
    }

    /// Script module handles alive now (for leak tests).
    public static var liveCount: Int { Int(ct_live_script_modules()) }

    /// Every submodule, depth first, the root first (name ""), with its TorchScript type name
    /// ("__torch__.torch.nn.modules.batchnorm.BatchNorm2d").
    public func submodules() throws -> [(name: String, type: String)] {
        try lines { ct_script_module_submodules(handle, &$0) }.map { line in
            let parts = line.split(separator: "\t", omittingEmptySubsequences: false)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        }
    }

    /// The parameters by dotted name, in state-dict order, sharing the module's tensors.
    public func namedParameters() throws -> [(name: String, tensor: Tensor)] { try tensors(buffers: false) }

    /// The buffers (BatchNorm's running statistics, ...) by dotted name, in state-dict order.
    public func namedBuffers() throws -> [(name: String, tensor: Tensor)] { try tensors(buffers: true) }

    /// Sets training or evaluation mode (the `training` attribute scripted code reads) here
    /// and in every submodule.
    public func train(_ on: Bool) throws {
        try check(ct_script_module_train(handle, on))
    }

    /// Moves every parameter and buffer to `device`, in place: the tensors handed out before
    /// follow.
    public func move(to device: Device) throws {
        let (type, index) = device.code
        try check(ct_script_module_to(handle, type, index))
    }

    /// Runs the forward pass on `input` and returns the tensor `output` names.
    ///
    /// The graph runs operator by operator, as eager PyTorch would run the module's code.
    public func forward(_ input: Tensor, output: ScriptOutput = .tensor) throws -> Tensor {
        try Self.withCause {
            try makeTensor { out in
            switch output {
            case .tensor: return ct_script_module_forward(handle, input.handle, nil, -1, out)
            case .element(let index): return ct_script_module_forward(handle, input.handle, nil, Int64(index), out)
            case .key(let key): return ct_script_module_forward(handle, input.handle, key, -1, out)
            }
            }
        }
    }

    /// Runs `body`, keeping of a TorchScript interpreter error ("The following operation
    /// failed in the TorchScript interpreter. Traceback of TorchScript ... RuntimeError:
    /// CAUSE") only its cause.
    static func withCause<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as TorchError where error.message.contains("failed in the TorchScript interpreter") {
            let lines = error.message.split(separator: "\n", omittingEmptySubsequences: true)
            guard let index = lines.lastIndex(where: { $0.contains("Error: ") }) else { throw error }
            let line = lines[index]
            let cause = line[line.range(of: "Error: ")!.upperBound...]
            throw TorchError(([String(cause)] + lines[(index + 1)...].map(String.init)).joined(separator: " "))
        }
    }

    /// What the forward pass returns for `input`, in words: "dict (out: tensor [1, 21, 64, 64])".
    public func describeOutput(for input: Tensor) throws -> String {
        try Self.withCause { try string { ct_script_module_describe_output(handle, input.handle, &$0) } }
    }

    /// The forward method's signature.
    public func schema() throws -> String {
        try string { ct_script_module_schema(handle, &$0) }
    }

    /// Counts over the inlined forward graph.
    public struct GraphSummary: Equatable, Sendable {
        public var nodes: Int
        public var batchNormCalls: Int
        /// Whether the code reads a module's `training` flag (scripted code does; a trace
        /// fixed it at the mode it was traced in).
        public var readsTrainingFlag: Bool
        public var hasControlFlow: Bool
    }

    public func graphSummary() throws -> GraphSummary {
        var nodes: Int64 = 0
        var batchNorms: Int64 = 0
        var training = false
        var control = false
        try check(ct_script_module_graph_summary(handle, &nodes, &batchNorms, &training, &control))
        return GraphSummary(
            nodes: Int(nodes), batchNormCalls: Int(batchNorms), readsTrainingFlag: training, hasControlFlow: control)
    }

    /// Hands every BatchNorm call of the forward graph that normalises with a submodule's
    /// running statistics to `normalize(layer, input, slope)`, `layer` indexing the returned
    /// list, `slope` the PReLU weight when the graph's only use of the result is a PReLU (the
    /// callee applies it: prelu(bn(input), slope));
    /// the other calls (statistics that are not buffers, eps or momentum computed at run time)
    /// stay libtorch's and are counted in `kept`. Call it once, before the first forward pass.
    ///
    /// `normalize` runs inside the forward pass, on its thread; what it computes is part of
    /// the autograd graph. It must not hold the module (the module holds it).
    public func redirectBatchNorm(to normalize: @escaping (Int, Tensor, Tensor?) throws -> Tensor) throws -> (
        layers: [RedirectedBatchNorm], kept: Int
    ) {
        guard redirect == nil else { throw TorchError("\(url.path): BatchNorm calls are redirected already") }
        let redirect = BatchNormRedirect(normalize)
        var kept: Int64 = 0
        let layers = try lines { ct_script_module_redirect_batch_norm(handle, redirect.model, &$0, &kept) }.map { line in
            let parts = line.split(separator: "\t", omittingEmptySubsequences: false)
            return RedirectedBatchNorm(
                path: String(parts[0]), eps: Double(parts[1]) ?? 1e-5, momentum: Double(parts[2]) ?? 0.1)
        }
        BatchNormRedirect.registry.add(redirect)
        self.redirect = redirect
        return (layers, Int(kept))
    }

    /// Hands every 2-d convolution of the forward graph to `handler` (SegTTT's kernels, where
    /// they are faster than libtorch's: `Kernels.convolution`); returns how many calls it
    /// redirected. Call it before the first forward pass. One handler serves the process: the
    /// last one given answers for every module redirected so far.
    public func redirectConvolutions(to handler: @escaping ConvolutionHandler) throws -> Int {
        convolutionHandler = handler
        ct_set_convolution_callback(convolutionCallback)
        var count: Int64 = 0
        try check(ct_script_module_redirect_convolutions(handle, &count))
        return Int(count)
    }

    // MARK: helpers

    private func tensors(buffers: Bool) throws -> [(name: String, tensor: Tensor)] {
        var count: Int32 = 0
        var names: UnsafeMutablePointer<CChar>?
        try check(ct_script_module_tensors(handle, buffers, &names, nil, 0, &count))
        var handles = [OpaquePointer?](repeating: nil, count: Int(count))
        try check(ct_script_module_tensors(handle, buffers, &names, &handles, count, &count))
        guard let names else { throw TorchError("\(url.path): its tensors changed while being listed") }
        defer { ct_string_free(names) }
        let tensors = handles.compactMap { $0.map { Tensor(handle: $0) } }
        let list = String(cString: names).split(separator: "\n").map(String.init)
        return Array(zip(list, tensors))
    }

    private func string(_ body: (inout UnsafeMutablePointer<CChar>?) -> ct_status) throws -> String {
        var text: UnsafeMutablePointer<CChar>?
        try check(body(&text))
        guard let text else { return "" }
        defer { ct_string_free(text) }
        return String(cString: text)
    }

    private func lines(_ body: (inout UnsafeMutablePointer<CChar>?) -> ct_status) throws -> [String] {
        try string(body).split(separator: "\n").map(String.init)
    }
}

/// The Swift side of redirected BatchNorm calls: one per script module, found by its model
/// number when libtorch calls back.
final class BatchNormRedirect: @unchecked Sendable {
    let model: Int64
    let normalize: (Int, Tensor, Tensor?) throws -> Tensor

    private static let counter = Counter()

    init(_ normalize: @escaping (Int, Tensor, Tensor?) throws -> Tensor) {
        model = BatchNormRedirect.counter.next()
        self.normalize = normalize
    }

    /// The redirects of the live script modules, by model number.
    static let registry = Registry()

    final class Counter: @unchecked Sendable {
        private var value: Int64 = 0
        private let lock = NSLock()
        func next() -> Int64 {
            lock.lock()
            defer { lock.unlock() }
            value += 1
            return value
        }
    }

    final class Registry: @unchecked Sendable {
        private var redirects: [Int64: BatchNormRedirect] = [:]
        private let lock = NSLock()

        func add(_ redirect: BatchNormRedirect) {
            lock.lock()
            redirects[redirect.model] = redirect
            lock.unlock()
            ct_set_batch_norm_callback(batchNormCallback)
        }

        func remove(_ model: Int64) {
            lock.lock()
            redirects[model] = nil
            lock.unlock()
        }

        func find(_ model: Int64) -> BatchNormRedirect? {
            lock.lock()
            defer { lock.unlock() }
            return redirects[model]
        }
    }
}

/// What libtorch calls for a redirected BatchNorm: the input handle becomes a `Tensor`, the
/// result a new handle; a Swift error becomes the forward pass's error.
private let batchNormCallback: ct_batch_norm_callback = { model, layer, input, slope, out in
    guard let input else {
        ct_set_last_error("a redirected BatchNorm call passed no input")
        return Int32(CT_ERROR)
    }
    let tensor = Tensor(handle: input)
    let slope = slope.map { Tensor(handle: $0) }
    guard let out else {
        ct_set_last_error("a redirected BatchNorm call passed nowhere to put its output")
        return Int32(CT_ERROR)
    }
    guard let redirect = BatchNormRedirect.registry.find(model) else {
        ct_set_last_error("BatchNorm layer \(layer) of a script module that no longer exists")
        return Int32(CT_ERROR)
    }
    do {
        return try handOver(redirect.normalize(Int(layer), tensor, slope), to: out)
    } catch {
        ct_set_last_error("\(error)")
        return Int32(CT_ERROR)
    }
}

/// Gives libtorch a callback's result: a new handle to `result` in `out`.
private func handOver(_ result: Tensor, to out: UnsafeMutablePointer<OpaquePointer?>) throws -> ct_status {
    var shared: OpaquePointer?
    try check(ct_tensor_share(result.handle, &shared))
    out.pointee = shared
    return Int32(CT_OK)
}

/// One 2-d convolution of a TorchScript graph, as `ScriptModule.redirectConvolutions` hands it
/// over: `torch.conv2d`'s operands, or `torch.conv_transpose2d`'s where `transposed`.
public struct ConvolutionCall {
    public var transposed: Bool
    public var input: Tensor
    public var weight: Tensor
    public var bias: Tensor?
    public var stride: Pair
    public var padding: Pair
    public var dilation: Pair
    public var groups: Int
    /// Transposed convolutions only.
    public var outputPadding: Pair
}

/// What computes a redirected convolution.
public typealias ConvolutionHandler = (ConvolutionCall) throws -> Tensor

/// The handler of the process's redirected convolutions; set before any graph calls it.
nonisolated(unsafe) private var convolutionHandler: ConvolutionHandler?

/// What libtorch calls for a redirected convolution: `convolutionHandler` on the operands,
/// the result as a new handle.
private let convolutionCallback: ct_convolution_callback = { transposed, input, weight, bias, params, out in
    guard let input, let weight, let params, let out, let handler = convolutionHandler else {
        ct_set_last_error("a redirected convolution passed no operands")
        return Int32(CT_ERROR)
    }
    let p = (0..<9).map { Int(params[$0]) }
    let call = ConvolutionCall(
        transposed: transposed, input: Tensor(handle: input), weight: Tensor(handle: weight),
        bias: bias.map { Tensor(handle: $0) }, stride: Pair(p[0], p[1]), padding: Pair(p[2], p[3]),
        dilation: Pair(p[4], p[5]), groups: p[6], outputPadding: Pair(p[7], p[8]))
    do {
        return try handOver(handler(call), to: out)
    } catch {
        ct_set_last_error("\(error)")
        return Int32(CT_ERROR)
    }
}
