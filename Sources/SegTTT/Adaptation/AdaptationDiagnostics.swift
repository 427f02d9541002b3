import Foundation
import Torch
import TorchNN

/// Evidence of what a test-time method does to the network, frame by frame:
///
/// - entropy: mean over pixels of H(p) = -sum_k p_k log p_k (nats) of the probabilities
///   behind the prediction; a collapse towards one class drives it to 0;
/// - histogram: the fraction of pixels predicted as each output k (including outputs that are
///   no class of the task, such as a background or void output);
/// - drift: ||theta - theta_source|| / ||theta_source|| over the adapted parameters (L2 over
///   all their elements together);
/// - gradient norms: ||g|| of the first step's gradient per parameter group, a group being the
///   first two components of the parameter's name ("encoder.level3", "layer4", ...);
/// - disagreement: with the drift monitor, the fraction of pixels whose adapted prediction
///   differs from bn-prior's, the measure its reset threshold applies to.
public final class AdaptationDiagnostics {
    public struct Frame: Codable, Equatable {
        public var entropy: Double
        public var histogram: [Double]
        public var drift: Double
        /// Empty for methods without a gradient step.
        public var gradientNorms: [String: Double]
        /// The drift monitor reset the weights on this frame.
        public var reset: Bool
        /// The drift monitor's measure (`FrameResult.disagreement`), nil without it.
        public var disagreement: Double?

        enum CodingKeys: String, CodingKey {
            case entropy, histogram, drift, reset, disagreement
            case gradientNorms = "gradient_norms"
        }
    }

    public let method: any TestTimeMethod
    /// Adapted parameters, with their group and source value (from `method.source`).
    private let tracked: [(group: String, parameter: Parameter, source: Tensor)]
    private let sourceNorm: Double
    private var gradientNorms: [String: Double] = [:]

    /// Starts observing `method`'s gradients (it replaces its gradient step's `observer`).
    public init(observing method: any TestTimeMethod) throws {
        self.method = method
        let ids = Set(method.adapted.map(ObjectIdentifier.init))
        // The method's source snapshot already holds every parameter's source value.
        tracked = try method.model.namedParameters().filter { ids.contains(ObjectIdentifier($0.parameter)) }.map {
            guard let source = method.source.tensors[$0.name] else {
                throw TorchError("the source snapshot lacks \($0.name)")
            }
            return (Self.group(of: $0.name), $0.parameter, source)
        }
        var squares = 0.0
        for item in tracked { squares += try (item.source * item.source).sum().item() }
        sourceNorm = squares.squareRoot()
        method.gradientStep?.observer = { [unowned self] _ in try self.recordGradients() }
    }

    /// "encoder.level3.0.conv.weight" -> "encoder.level3"; "conv1.weight" -> "conv1".
    static func group(of name: String) -> String {
        let parts = name.split(separator: ".")
        return parts.prefix(Swift.max(1, Swift.min(2, parts.count - 1))).joined(separator: ".")
    }

    private func recordGradients() throws {
        var squares: [String: Double] = [:]
        for item in tracked {
            guard let grad = item.parameter.value.grad else { continue }
            squares[item.group, default: 0] += try (grad * grad).sum().item()
        }
        gradientNorms = squares.mapValues { $0.squareRoot() }
    }

    /// The diagnostics of the frame whose result the method just returned.
    public func frame(_ result: FrameResult) throws -> Frame {
        let probabilities = try result.probabilities()
        let entropy = try withNoGrad {
            try (probabilities * probabilities.clamp(min: 1e-12).log()).sum(dims: [1]).mean().item() * -1
        }
        let outputs = probabilities.shape[1]
        let counts = try result.prediction.reshape([-1]).bincount(minLength: outputs).to(.float64)
        let histogram = try (counts / Double(Swift.max(1, result.prediction.count))).toArray(Double.self)
        var squares = 0.0
        try withNoGrad {
            for item in tracked {
                let change = try item.parameter.value - item.source
                squares += try (change * change).sum().item()
            }
        }
        defer { gradientNorms = [:] }
        return Frame(
            entropy: entropy, histogram: histogram,
            drift: sourceNorm > 0 ? squares.squareRoot() / sourceNorm : 0, gradientNorms: gradientNorms,
            reset: result.reset, disagreement: result.disagreement)
    }
}
