/*
 * ckernels: SegTTT's own CPU kernels, in C over the shim's handles, for the Swift `Kernels`
 * module, which holds the rule for when each takes a call (docs/BENCHMARKS.md, "SegTTT's
 * kernels"). The rules of ctorch.h hold: new handles owned by the caller, CT_OK or CT_ERROR
 * with the message in ct_last_error(), no C++ exception leaves.
 */
#ifndef CKERNELS_H
#define CKERNELS_H

#include "ctorch.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The instruction sets the convolution kernels (3x3, 1x1 and 2x2 transposed) are compiled for,
 *  widest last. */
typedef enum { CK_BASELINE = 0, CK_AVX2 = 1, CK_AVX512 = 2 } ck_instruction_set;
/** Whether this CPU runs `set`'s code (the baseline always). */
bool ck_cpu_supports(ck_instruction_set set);
/** The set the kernels run now: the widest the CPU supports unless ck_use_instruction_set chose. */
ck_instruction_set ck_instruction_set_in_use(void);
/** Makes the kernels run `set`'s code from now on, in every thread; false (and no change) where
 *  the CPU does not support it. */
bool ck_use_instruction_set(ck_instruction_set set);

/** Argmax over `dim` as torch.argmax: SegTTT's kernel for contiguous float32 CPU input reduced
 *  over a dimension other than the innermost one, libtorch's max over `dim` (the same
 *  indices) for other floating CPU input, libtorch's argmax elsewhere. */
ct_status ck_argmax(ct_tensor t, int64_t dim, bool keepdim, ct_tensor *out);
/** ct_batch_norm_update_stats by SegTTT's kernel (two passes per channel, summed in double) for
 *  contiguous float32 CPU input and statistics with at least two values per channel, by
 *  libtorch's elsewhere. */
ct_status ck_batch_norm_update_stats(ct_tensor input, ct_tensor running_mean, ct_tensor running_var,
                                     double momentum);
/** out[n, o, i sh + a, j sw + b] = blocks[n, (o sh + a) sw + b, i, j] for float32 CPU blocks
 *  [N, O sh sw, H, W], with its own backward (the inverse gather). */
ct_status ck_block_shuffle(ct_tensor blocks, int64_t sh, int64_t sw, ct_tensor *out);
/** Transposed convolution of float32 CPU input [N, C, H, W] by weight [C, O, 2, 2] (bias [O]
 *  or null) with stride 2, no padding: output [N, O, 2H, 2W], with its own backward pass
 *  (first derivatives). */
ct_status ck_conv_transpose2x2(ct_tensor input, ct_tensor weight, ct_tensor bias, ct_tensor *out);
/** 3x3 convolution of float32 CPU input [N, C, H, W] by weight [O, C, 3, 3] (bias [O] or null),
 *  stride 1, dilation and padding (dh, dw): the output keeps H x W. For few channels, with its
 *  own backward pass (first derivatives). */
ct_status ck_dilated_conv3x3(ct_tensor input, ct_tensor weight, ct_tensor bias, int64_t dh, int64_t dw,
                             ct_tensor *out);
/** 1x1 convolution of float32 CPU input [N, C, H, W] by weight [O, C, 1, 1] (bias [O] or null),
 *  stride 1, no padding: output [N, O, H, W]. For few output channels, with its own backward
 *  pass (first derivatives). */
ct_status ck_pointwise_conv(ct_tensor input, ct_tensor weight, ct_tensor bias, ct_tensor *out);
/** 3x3 convolution of float32 CPU input [N, C, H, W] by weight [O, C, 3, 3] (bias [O] or null),
 *  stride 2, padding 1: output [N, O, ceil(H / 2), ceil(W / 2)]. For few output channels, with
 *  its own forward pass and weight gradient (the input's gradient is libtorch's). */
ct_status ck_strided_conv3x3(ct_tensor input, ct_tensor weight, ct_tensor bias, ct_tensor *out);
/** Whether ck_winograd_conv3x3 runs: the build links oneDNN, oneDNN has Winograd kernels for
 *  this CPU, and ck_use_winograd did not turn it off. */
bool ck_winograd_available(void);
/** Turns ck_winograd_conv3x3 on or off for the process; false (and off) where it cannot run. */
bool ck_use_winograd(bool on);
/** 3x3 convolution of float32 CPU input [N, C, H, W] by weight [O, C, 3, 3] (bias [O] or null),
 *  stride 1, dilation and padding (dh, dw), by oneDNN's Winograd kernels on the input's
 *  dh x dw phases, with their backward passes (first derivatives). */
ct_status ck_winograd_conv3x3(ct_tensor input, ct_tensor weight, ct_tensor bias, int64_t dh, int64_t dw,
                              ct_tensor *out);
/** prelu(batch_norm(input)) with statistics that carry no gradient (mean, var per channel),
 *  for float32 CPU input, as one fused kernel with its own backward pass; gradients reach
 *  input, weight, bias and slope (one slope, or one per channel). */
ct_status ck_batch_norm_prelu(ct_tensor input, ct_tensor mean, ct_tensor var, ct_tensor weight, ct_tensor bias,
                              ct_tensor slope, double eps, ct_tensor *out);
/** Output Contrastive Loss of logits [2, C, H, W] (float32, CPU) in one fused kernel with its
 *  own backward pass: loss = pos_coeff * pos + neg_coeff * neg, pos and neg as
 *  OutputContrastiveLoss defines them; all three are scalars that carry gradients to logits. */
ct_status ck_output_contrastive_loss(ct_tensor logits, double pos_coeff, double neg_coeff, ct_tensor *loss,
                                     ct_tensor *pos, ct_tensor *neg);

#ifdef __cplusplus
}
#endif

#endif
