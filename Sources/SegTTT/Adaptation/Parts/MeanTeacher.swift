import Torch
import TorchNN

/// A mean teacher (Tarvainen and Valpola, NeurIPS 2017; CoTTA): a copy of the adapted
/// parameters that follows them slowly, theta_t <- a theta_t + (1 - a) theta after every
/// step, and predicts with its own weights.
public final class MeanTeacher: MethodPart {
    public let momentum: Double
    /// The parameters the teacher follows (the student's).
    public let parameters: [Parameter]
    /// The teacher's values, one per parameter.
    private var values: [Tensor]

    public init(following parameters: [Parameter], momentum: Double) throws {
        self.momentum = momentum
        self.parameters = parameters
        values = try parameters.map { try $0.value.detach().clone() }
    }

    /// `body` run with the teacher's values in the parameters (no gradient), the student's put
    /// back after.
    public func withTeacherWeights<T>(_ body: () throws -> T) throws -> T {
        let student = try parameters.map { try $0.value.detach().clone() }
        try withNoGrad { for (parameter, value) in zip(parameters, values) { try parameter.value.copy_(value) } }
        defer {
            try? withNoGrad { for (parameter, value) in zip(parameters, student) { try parameter.value.copy_(value) } }
        }
        return try withNoGrad { try body() }
    }

    /// theta_t <- a theta_t + (1 - a) theta for every parameter.
    public func update() throws {
        try withNoGrad {
            for (value, parameter) in zip(values, parameters) {
                try value.mul_(momentum)
                try value.add_(parameter.value.detach(), alpha: 1 - momentum)
            }
        }
    }

    public func state() throws -> StateDict {
        StateDict(try values.enumerated().map { (String($0.offset), try $0.element.clone()) })
    }

    public func loadState(_ state: StateDict) throws {
        for index in values.indices {
            guard let value = state[String(index)] else { continue }
            try withNoGrad { try values[index].copy_(value) }
        }
    }

    /// The teacher takes the parameters' current (source) values.
    public func reset() throws { values = try parameters.map { try $0.value.detach().clone() } }
}
