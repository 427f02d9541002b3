internal import CKernels
import Torch

extension Kernels {
    /// The instruction sets that the convolution kernels (`dilatedConv3x3`, `stridedConv3x3`,
    /// `pointwiseConv`; `convTranspose2x2` runs its AVX2 code under AVX-512) are compiled for:
    /// vectors of 8 floats in SSE's registers, in AVX2's (with FMA), or of 16 floats in
    /// AVX-512's 32 registers, with register tiles sized to each.
    public enum InstructionSet: String, CaseIterable, Sendable {
        case baseline, avx2, avx512

        var code: ck_instruction_set {
            switch self {
            case .baseline: CK_BASELINE
            case .avx2: CK_AVX2
            case .avx512: CK_AVX512
            }
        }

        /// Whether this CPU runs this set's code.
        public var isSupported: Bool { ck_cpu_supports(code) }
    }

    /// The instruction set the kernels run: the widest this CPU supports (docs/BENCHMARKS.md,
    /// "SegTTT's kernels", measures each against the others), unless `use(_:)` chose another.
    public static var instructionSet: InstructionSet {
        switch ck_instruction_set_in_use() {
        case CK_AVX512: .avx512
        case CK_AVX2: .avx2
        default: .baseline
        }
    }

    /// Makes the kernels run `set`'s code from now on, in every thread. Throws where the CPU
    /// does not support it.
    public static func use(_ set: InstructionSet) throws {
        guard ck_use_instruction_set(set.code) else {
            let supported = InstructionSet.allCases.filter(\.isSupported).map(\.rawValue)
            throw TorchError(
                "this CPU does not run the kernels' \(set.rawValue) code; it runs \(supported.joined(separator: ", "))")
        }
    }
}

extension Kernels {
    /// Runs `body` once under each instruction set this CPU supports, from the baseline to the
    /// widest (`skippingBaseline`: from AVX2), the kernels running that set's code meanwhile;
    /// the set in use before is restored after, also when `body` throws. For comparing the sets'
    /// code in tests and benchmarks.
    public static func forEachInstructionSet(
        skippingBaseline: Bool = false, _ body: (InstructionSet) throws -> Void
    ) throws {
        let before = instructionSet
        defer { try? use(before) }
        for set in InstructionSet.allCases where set.isSupported && !(skippingBaseline && set == .baseline) {
            try use(set)
            try body(set)
        }
    }
}
