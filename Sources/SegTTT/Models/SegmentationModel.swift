import Torch
import TorchNN

/// Groups of parameters a test-time method can ask a model for, by role.
public enum ParameterRole: String, CaseIterable, Sendable, Codable {
    /// Every trainable parameter.
    case all
    /// Only BatchNorm weights and biases.
    case batchNormAffine = "bn-affine"
    /// Only the classifier head(s).
    case head
}

/// A semantic segmentation network: an image batch in, per-pixel class logits out.
public protocol SegmentationModel: Module {
    /// Class names, outputs, input normalisation and accepted formats.
    var card: ModelCard { get }
    /// Logits [N, K, H, W] at the input's resolution for a normalised input [N, 3, H, W].
    func logits(_ input: Tensor) throws -> Tensor
    /// Dotted names of the child modules that form the classifier head(s).
    var headModuleNames: [String] { get }
    /// The features the classifier reads [N, D, h, w] and the logits [N, K, H, W] that
    /// `logits` returns, from one forward pass, for methods that build class prototypes
    /// (DIGA); nil when the model does not expose them.
    func classifierFeatures(_ input: Tensor) throws -> (features: Tensor, logits: Tensor)?
}

extension SegmentationModel {
    public func classifierFeatures(_ input: Tensor) throws -> (features: Tensor, logits: Tensor)? { nil }

    /// Every BatchNorm layer, so an adaptation method can change how they normalise.
    public var batchNormLayers: [BatchNorm2d] {
        namedModules().compactMap { $0.module as? BatchNorm2d }
    }

    /// The trainable parameters that play `role`, in state-dict order.
    public func parameters(for role: ParameterRole) -> [Parameter] {
        switch role {
        case .all:
            return trainableParameters()
        case .batchNormAffine:
            return batchNormLayers.flatMap { [$0.weight, $0.bias].compactMap { $0 } }.filter(\.isTrainable)
        case .head:
            let heads = namedModules().filter { headModuleNames.contains($0.name) }.map(\.module)
            return heads.flatMap { $0.trainableParameters() }
        }
    }
}
