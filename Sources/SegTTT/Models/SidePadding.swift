import Torch

/// Networks that halve their features several times need input sides that are multiples of
/// 2^k (ESPNet: 8), or their skip connections no longer line up. A frame of any size is fed
/// to them padded with zeros (the normalised input's mean colour) at the bottom and right,
/// and the logits are cropped back to the frame.
///
/// - Parameters:
///   - input: the normalised batch [N, C, H, W].
///   - multiple: the side multiple the network needs (1: no padding).
///   - body: the network on the padded batch [N, C, H', W'], returning [N, K, H', W'].
/// - Returns: its logits cropped to [N, K, H, W].
public func withSidesPadded(_ input: Tensor, toMultipleOf multiple: Int, _ body: (Tensor) throws -> Tensor) throws
    -> Tensor
{
    precondition(multiple >= 1, "a side multiple is at least 1")
    guard input.rank == 4 else { return try body(input) }
    let (height, width) = (input.shape[2], input.shape[3])
    let padHeight = (multiple - height % multiple) % multiple
    let padWidth = (multiple - width % multiple) % multiple
    guard padHeight > 0 || padWidth > 0 else { return try body(input) }
    var padded = input
    if padWidth > 0 {
        let zeros = try Tensor.zeros(
            [input.shape[0], input.shape[1], height, padWidth], dtype: input.dtype, device: input.device)
        padded = try Tensor.cat([padded, zeros], dim: 3)
    }
    if padHeight > 0 {
        let zeros = try Tensor.zeros(
            [input.shape[0], input.shape[1], padHeight, width + padWidth], dtype: input.dtype, device: input.device)
        padded = try Tensor.cat([padded, zeros], dim: 2)
    }
    let logits = try body(padded)
    return try logits.narrow(dim: 2, start: 0, length: height).narrow(dim: 3, start: 0, length: width)
}
