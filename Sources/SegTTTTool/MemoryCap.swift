import Foundation

/// A bound on the tool's address space at the memory the machine has free when it starts
/// (Linux, CPU runs): a frame too large for the machine then makes libtorch's allocation fail,
/// which the run reports with the frame's name and size, instead of the kernel's out-of-memory
/// killer ending the process without a word.
///
/// The bound is the address space in use at start plus MemAvailable and free swap from
/// /proc/meminfo. CUDA reserves address space far beyond the memory it uses, so runs that
/// name a CUDA device are left unbounded.
enum MemoryCap {
    /// Applies the bound unless `arguments` name a CUDA device; returns it in bytes, or nil.
    @discardableResult
    static func apply(arguments: [String]) -> Int? {
        guard !arguments.contains(where: { $0.lowercased().contains("cuda") }),
            let free = meminfo("MemAvailable").map({ $0 + (meminfo("SwapFree") ?? 0) }),
            let used = addressSpaceInUse()
        else { return nil }
        let bound = used + free
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_AS.rawValue), &limit) == 0, limit.rlim_cur > rlim_t(bound)
        else { return nil }
        limit.rlim_cur = rlim_t(bound)
        return setrlimit(Int32(RLIMIT_AS.rawValue), &limit) == 0 ? bound : nil
    }

    /// Whether `message`, from libtorch, says an allocation failed.
    static func isAllocationFailure(_ message: String) -> Bool {
        message.contains("can't allocate memory") || message.contains("std::bad_alloc")
    }

    /// A field of /proc/meminfo in bytes ("MemAvailable:  123456 kB").
    private static func meminfo(_ field: String) -> Int? { kilobytes(field, in: "/proc/meminfo") }

    /// The process's virtual size (VmSize of /proc/self/status) in bytes.
    private static func addressSpaceInUse() -> Int? { kilobytes("VmSize", in: "/proc/self/status") }

    /// The value in bytes of a "FIELD:   123456 kB" line of a /proc file.
    private static func kilobytes(_ field: String, in file: String) -> Int? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }.map { $0 * 1024 }
        }
        return nil
    }
}
