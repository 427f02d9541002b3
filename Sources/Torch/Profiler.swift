internal import CTorch

/// Where a region's time went, per libtorch operator (`aten::convolution`,
/// `aten::mkldnn_convolution`, ...), autograd node (`ConvolutionBackward0`, ...) and fused
/// kernel of SegTTT's (`segttt::batch_norm_prelu`, ...), from libtorch's CPU profiler, the one
/// behind `torch.autograd.profiler` in Python.
///
/// A range's total time is from its start to its end; its self time is the total less the
/// totals of the ranges that ran directly inside it on the same thread. Work outside every
/// range (Swift code, the autograd engine's own scheduling) is in no row. Profiling adds a
/// few microseconds to every operator.
public struct OperatorTime: Sendable, Equatable {
    /// The operator's or node's name, followed by its input sizes where they were recorded
    /// (`aten::add [2,20,360,480] [2,20,360,480]`; `[]` for an input that is not a tensor or
    /// has no dimensions).
    public var name: String
    /// How many times it ran.
    public var calls: Int
    /// Summed time from its starts to its ends, in milliseconds.
    public var totalMilliseconds: Double
    /// Summed time outside the ranges nested in it, in milliseconds.
    public var selfMilliseconds: Double

    public init(name: String, calls: Int, totalMilliseconds: Double, selfMilliseconds: Double) {
        self.name = name
        self.calls = calls
        self.totalMilliseconds = totalMilliseconds
        self.selfMilliseconds = selfMilliseconds
    }

    /// Runs `body` under libtorch's profiler and returns its result with the operators that
    /// this thread ran meanwhile (work on OpenMP's threads inside an operator counts in its
    /// time), by self time from the largest; `byShapes` tells the calls of an operator apart
    /// by their input sizes.
    public static func profile<T>(byShapes: Bool = false, _ body: () throws -> T) throws -> (
        result: T, operators: [OperatorTime]
    ) {
        try check(ct_profiler_start(byShapes))
        let result: T
        do {
            result = try body()
        } catch {
            _ = try? stop()
            throw error
        }
        return (result, try stop())
    }

    private static func stop() throws -> [OperatorTime] {
        var text: UnsafeMutablePointer<CChar>?
        try check(ct_profiler_stop(&text))
        guard let text else { return [] }
        defer { ct_string_free(text) }
        return String(cString: text).split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 4, let calls = Int(fields[1]), let total = Double(fields[2]),
                let selfTime = Double(fields[3])
            else { return nil }
            return OperatorTime(
                name: String(fields[0]), calls: calls, totalMilliseconds: total / 1000,
                selfMilliseconds: selfTime / 1000)
        }
    }
}
