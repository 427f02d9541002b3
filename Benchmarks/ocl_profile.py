"""Where the time of the PyTorch eager OCL step (Benchmarks/ocl_step.py) goes, and which
alternatives make it faster, measured within one process. Run with Debian's python3-torch:

    /usr/bin/python3 Benchmarks/ocl_profile.py MODE [--config NAME] [--threads N] [--repeats N]
        [--only VARIANT,...]

MODE:
- `ops`: torch.profiler over `repeats` steps after a warm-up: self CPU time per op, and the
  same grouped into categories (convolution forward / backward, batch norm, PReLU, ...).
- `convs`: every convolution of the step timed alone at its shape in the step (batch of
  two views), forward and forward + backward (input and weight gradients as in the step),
  summed per kind: 1x1, 3x3 dilation 1, 3x3 dilation d > 1, strided, transposed.
- `variants`: the plain step against alternatives, each on its own copy of the model,
  interleaved round by round (round r times every variant once), so that load on the
  machine hits them alike; reports median ms and the first step's loss of each.
- `restore`: the stochastic restoration alone, four ways, interleaved.
- `bn-stats`: the BN prior's statistics at every batch norm's input in the step, as the
  script computes them (`torch.var_mean`, then mixed with the source statistics) and as
  SegTTT does (`torch.batch_norm_update_stats` on a copy of the source statistics with
  momentum 1 - prior, which mixes them in the same pass), interleaved, summed over layers;
  and a plain sum over the same dimensions (`sum_only`), the least any pass can take.
- `classifier`: DeepLabV2's main head in the step (two views of layer4's features, 2048
  channels at the configuration's stride-8 size; the published dilation-6 and -12 branches,
  19 classes), forward and backward, as the two dilated convolutions and as SegTTT computes
  it (one matrix product over the distinct tap offsets, then shifted additions), interleaved.
- `prediction`: the frame's prediction from the step's logits (the argmax over classes of
  the mean of the two views' logits) by `argmax(dim=1)` and by `max(dim=1).indices`, which
  SegTTT's argmax uses on CPU, interleaved, with a check that the indices agree.
- `sums`: the ESP blocks' hierarchical feature fusion (a1 = d2, a_k = a_(k-1) + d_(2^(k+1)),
  then cat[d1, a1, ..., a4]) at every block's shapes in the step, forward and backward,
  against the concatenation of the five branch outputs alone, interleaved and summed over
  the blocks: the most that one fused kernel for the sums could save.

Variants (each keeps the maths of ALGORITHM.md; where a variant changes the random stream
or the rounding, its loss is still that of the first step, taken before any restoration):
- channels_last: weights and input in channels-last memory format.
- no_mkldnn: torch.backends.mkldnn disabled during the step.
- space_to_batch: each 3x3 convolution with dilation d > 1 (stride 1, padding d) computed
  as a plain 3x3 convolution (padding 1) on the d * d sub-images x_rs[u, v] = x[u d + r,
  v d + s] stacked along the batch: y[u d + r, v d + s] = sum_ab w_ab x_rs[u + a - 1,
  v + b - 1] exactly. H and W are zero-padded at the end to multiples of d, which only
  extends the zero padding the dilated convolution sees anyway.
- conv1x1_matmul: every 1x1 stride-1 convolution as a batched matrix product,
  y[n] = W x[n] (+ b), with x[n] as [Cin, H W].
- transposed_matmul: every 2x2 stride-2 transposed convolution as one matrix product and a
  pixel shuffle, as SegTTT computes it.
- padded_channels: every 3x3 convolution whose input or output channel count is not a
  multiple of 8 run with both padded by zero channels to the next multiple of 8, and its
  output cut back (the extra weights are zero and their gradient is dropped, so the step
  is unchanged).
- branches_nhwc, branches_nhwc_64 (ESPNet): the ESP blocks' five dilated 3x3 convolutions
  on a channels-last copy of the block's reduced features, the concatenation of their sums
  turned back to NCHW; in every block, or only in those with 12-channel branches (64
  channels out, level 2), where oneDNN's kernels gained most in channels-last alone.
- foreach: SGD with torch._foreach ops (foreach=True) instead of the per-tensor loop.
- zero_grad_zeros: gradients zeroed in place instead of set to None.
- restore_lerp / restore_where_out / restore_index: the restoration as p.lerp_(s, m)
  (m in {0, 1}: exact, lerp returns end - (end - start)(1 - w) for w >= 0.5), as
  torch.where(mask, s, p, out=p) (one op), and as p[mask] = s[mask] (index put); the plain
  step uses p.copy_(torch.where(mask, s, p)) (two ops).
- threads2: torch.set_num_threads(2) during the step (the others use --threads).
"""
import argparse
import collections
import copy
import types
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ocl_step import (BN_PRIOR, CONFIGS, MASK_RATIO, OCLStep, build, fixed_input, main_logits,  # noqa: E402
                      median_ms)

# Self-time categories of profiler op names, first match wins (checked in this order).
CATEGORIES = [
    ("conv backward", ("convolution_backward", "ConvolutionBackward", "conv2d_backward", "transpose2d_backward")),
    ("conv forward", ("conv", "mkldnn_convolution")),
    ("batch norm", ("batch_norm", "BatchNorm", "var_mean", "VarMean")),
    ("prelu", ("prelu", "Prelu")),
    ("cat / slice / flip", ("cat", "Cat", "slice", "Slice", "flip", "Flip", "narrow", "select", "Select")),
    ("add / mul", ("add", "Add", "mul", "Mul", "sub", "Sub")),
    ("softmax / normalise / loss", ("softmax", "Softmax", "norm", "Norm", "div", "Div", "clamp", "neg", "mean",
                                    "Mean", "sum", "Sum", "pow", "Pow", "argmax", "expand", "Expand")),
    ("optimizer", ("sgd", "Optimizer", "zero_grad", "_foreach")),
    ("restoration", ("rand", "uniform", "lt", "where", "copy_", "lerp", "index_put")),
    ("pooling / interpolation", ("pool", "Pool", "upsample", "Upsample")),
    ("autograd bookkeeping", ("AccumulateGrad", "autograd", "detach", "zeros", "empty", "fill", "ones")),
]


def fresh_step(config, step_class=OCLStep, **optimizer):
    """A model with the configuration's fixed weights and the OCL step on its fixed input."""
    network, height, width, _ = CONFIGS[config]
    model, _ = build(network)
    step = step_class(model, fixed_input(network, height, width))
    if optimizer:
        step.optimizer = torch.optim.SGD(step.params, **dict(step.optimizer.defaults, **optimizer))
    return step


def category(name):
    for label, keys in CATEGORIES:
        if any(k in name for k in keys):
            return label
    return "other"


def profile_ops(config, repeats):
    step = fresh_step(config)
    step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(repeats):
            step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    print(f"self CPU per step: {total / repeats / 1e3:.1f} ms")
    print(events.table(sort_by="self_cpu_time_total", row_limit=30))
    groups = collections.Counter()
    for e in events:
        groups[category(e.key)] += e.self_cpu_time_total
    for label, t in groups.most_common():
        print(f"{label:28} {t / repeats / 1e3:9.1f} ms  {100 * t / total:5.1f} %")


def conv_kind(m):
    if isinstance(m, nn.ConvTranspose2d):
        return "transposed"
    if m.stride != (1, 1):
        return "strided"
    if m.kernel_size == (1, 1):
        return "1x1"
    return "3x3 d1" if m.dilation == (1, 1) else f"3x3 d{m.dilation[0]}"


def time_convs(config, repeats):
    """Sums, per conv kind, of each conv's median forward and forward + backward time."""
    step = fresh_step(config)
    shapes = []
    handles = [m.register_forward_hook(lambda m, i, o: shapes.append((m, i[0].shape, i[0].requires_grad)))
               for m in step.model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    step()
    for h in handles:
        h.remove()
    sums = collections.defaultdict(lambda: [0.0, 0.0, 0])
    for m, shape, needs_grad in shapes:
        x = torch.randn(shape).requires_grad_(needs_grad)
        m(x)
        with torch.no_grad():
            fwd = median_ms(lambda: m(x), repeats)
        y = m(x)
        grad = torch.randn_like(y)

        def both():
            m.weight.grad = None
            x.grad = None
            m(x).backward(grad)
        both()
        sums[conv_kind(m)][0] += fwd
        sums[conv_kind(m)][1] += median_ms(both, repeats)
        sums[conv_kind(m)][2] += 1
    print(f"{'kind':12} {'count':>5} {'fwd ms':>9} {'fwd+bwd ms':>11} {'bwd/fwd':>8}")
    for kind, (fwd, both_ms, count) in sorted(sums.items(), key=lambda kv: -kv[1][1]):
        print(f"{kind:12} {count:5} {fwd:9.1f} {both_ms:11.1f} {(both_ms - fwd) / fwd:8.2f}")
    print(f"{'all':12} {len(shapes):5} {sum(v[0] for v in sums.values()):9.1f} "
          f"{sum(v[1] for v in sums.values()):11.1f}")


class SpaceToBatchConv(nn.Module):
    """A 3x3 convolution with dilation d, padding d, stride 1, computed on the d * d
    sub-images (module docstring); holds the original conv, so its parameter is shared."""

    def __init__(self, conv):
        super().__init__()
        self.conv = conv
        self.d = conv.dilation[0]

    def forward(self, x):
        n, c, h, w = x.shape
        d = self.d
        hp, wp = -(-h // d) * d, -(-w // d) * d
        x = F.pad(x, (0, wp - w, 0, hp - h))
        sub = x.view(n, c, hp // d, d, wp // d, d).permute(0, 3, 5, 1, 2, 4).reshape(n * d * d, c, hp // d, wp // d)
        y = F.conv2d(sub, self.conv.weight, self.conv.bias, padding=1)
        k = y.shape[1]
        y = y.view(n, d, d, k, hp // d, wp // d).permute(0, 3, 4, 1, 5, 2).reshape(n, k, hp, wp)
        return y[:, :, :h, :w]


class MatmulConv1x1(nn.Module):
    """A 1x1 stride-1 convolution as a batched matrix product: y[n] = W x[n] + b, with x[n]
    as [Cin, H W]; holds the original conv, so its parameter is shared."""

    def __init__(self, conv):
        super().__init__()
        self.conv = conv

    def forward(self, x):
        n, c, h, w = x.shape
        weight = self.conv.weight.view(self.conv.out_channels, c)
        y = torch.matmul(weight, x.reshape(n, c, h * w)).view(n, -1, h, w)
        return y if self.conv.bias is None else y + self.conv.bias.view(1, -1, 1, 1)


class MatmulTransposed2x2(nn.Module):
    """A ConvTranspose2d with kernel = stride = 2 (no overlap) as one matrix product and a
    pixel shuffle: y[n, o, 2i + a, 2j + b] = sum_c W[c, o, a, b] x[n, c, i, j]."""

    def __init__(self, conv):
        super().__init__()
        self.conv = conv

    def forward(self, x):
        n, c, h, w = x.shape
        k = self.conv.out_channels
        weight = self.conv.weight.reshape(c, k * 4).t()
        y = torch.matmul(weight, x.reshape(n, c, h * w)).view(n, k, 2, 2, h, w)
        return y.permute(0, 1, 4, 2, 5, 3).reshape(n, k, 2 * h, 2 * w)


class PaddedChannelsConv(nn.Module):
    """A convolution whose input and output channel counts are padded with zeros up to
    multiples of 8, the block size of oneDNN's direct kernels (counts that are not fall to
    its im2col path): y = conv(pad(x), pad(W))[:, :Cout]; holds the original conv, so its
    parameter is shared and its gradient is the padded one's restricted to it."""

    def __init__(self, conv):
        super().__init__()
        self.conv = conv
        self.extra_in = -conv.in_channels % 8
        self.extra_out = -conv.out_channels % 8

    def forward(self, x):
        c = self.conv
        weight = F.pad(c.weight, (0, 0, 0, 0, 0, self.extra_in, 0, self.extra_out))
        y = F.conv2d(F.pad(x, (0, 0, 0, 0, 0, self.extra_in)), weight, None, c.stride, c.padding, c.dilation)
        y = y[:, :c.out_channels]
        return y if c.bias is None else y + c.bias.view(1, -1, 1, 1)


def replace_convs(model, wrapper, fits):
    """Wraps every convolution child for which fits(conv) holds."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, (nn.Conv2d, nn.ConvTranspose2d)) and fits(child):
                setattr(parent, name, wrapper(child))
    return model


def space_to_batch(model):
    """Replaces every stride-1 3x3 convolution with dilation > 1 and padding = dilation."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if (isinstance(child, nn.Conv2d) and child.kernel_size == (3, 3) and child.stride == (1, 1)
                    and child.dilation[0] > 1 and child.dilation[0] == child.dilation[1]
                    and child.padding == child.dilation and child.groups == 1):
                setattr(parent, name, SpaceToBatchConv(child))
    return model


class LerpRestore(OCLStep):
    def restore(self):
        for p, s in zip(self.params, self.source):
            p.lerp_(s, (torch.rand(p.shape, generator=self.generator) < MASK_RATIO).to(p.dtype))


class WhereOutRestore(OCLStep):
    def restore(self):
        for p, s in zip(self.params, self.source):
            torch.where(torch.rand(p.shape, generator=self.generator) < MASK_RATIO, s, p, out=p)


class IndexRestore(OCLStep):
    def restore(self):
        for p, s in zip(self.params, self.source):
            mask = torch.rand(p.shape, generator=self.generator) < MASK_RATIO
            p[mask] = s[mask]


class ZeroGradZeros(OCLStep):
    """Zeroes the gradients in place where the plain step sets them to None."""

    def __init__(self, model, x):
        super().__init__(model, x)
        optimizer = self.optimizer
        optimizer.zero_grad = lambda set_to_none: torch.optim.SGD.zero_grad(optimizer, set_to_none=False)


def esp_branches_channels_last(model, fits):
    """Makes every ESP block for which fits(block) holds run its five dilated branches on a
    channels-last copy of the reduced features, and turn the concatenation back to NCHW."""
    from espnet import ESP

    def forward(self, x):
        r = self.c1(x).contiguous(memory_format=torch.channels_last)
        d = [getattr(self, f"d{k}")(r) for k in (1, 2, 4, 8, 16)]
        a = [d[1]]
        for t in d[2:]:
            a.append(a[-1] + t)
        y = torch.cat([d[0]] + a, 1).contiguous()
        if self.residual:
            y = y + x
        return self.act(self.bn(y)) if self.down else self.bn(y)
    for module in model.modules():
        if isinstance(module, ESP) and fits(module):
            module.forward = types.MethodType(forward, module)
    return model


def variant_steps(config, threads):
    """name -> step callable; each owns its model copy."""
    plain = fresh_step(config)
    steps = {"plain": plain}
    cl = fresh_step(config)
    cl.model.to(memory_format=torch.channels_last)
    cl.x = cl.x.contiguous(memory_format=torch.channels_last)
    cl.source = [p.detach().clone() for p in cl.params]
    steps["channels_last"] = cl
    no_dnn = fresh_step(config)

    def no_mkldnn():
        with torch.backends.mkldnn.flags(enabled=False):
            return no_dnn()
    steps["no_mkldnn"] = no_mkldnn
    s2b = fresh_step(config)
    space_to_batch(s2b.model)
    steps["space_to_batch"] = s2b
    mm = fresh_step(config)
    replace_convs(mm.model, MatmulConv1x1, lambda c: isinstance(c, nn.Conv2d) and c.kernel_size == (1, 1)
                  and c.stride == (1, 1) and c.groups == 1)
    steps["conv1x1_matmul"] = mm
    tr = fresh_step(config)
    replace_convs(tr.model, MatmulTransposed2x2, lambda c: isinstance(c, nn.ConvTranspose2d)
                  and c.kernel_size == (2, 2) and c.stride == (2, 2) and c.padding == (0, 0) and c.groups == 1)
    steps["transposed_matmul"] = tr
    padded = fresh_step(config)
    replace_convs(padded.model, PaddedChannelsConv, lambda c: isinstance(c, nn.Conv2d) and c.groups == 1
                  and c.kernel_size == (3, 3) and (c.in_channels % 8 or c.out_channels % 8))
    steps["padded_channels"] = padded
    if config.startswith("espnet"):
        steps["branches_nhwc"] = fresh_step(config)
        esp_branches_channels_last(steps["branches_nhwc"].model, lambda block: True)
        steps["branches_nhwc_64"] = fresh_step(config)
        esp_branches_channels_last(steps["branches_nhwc_64"].model, lambda block: block.d2.conv.in_channels == 12)
    steps["foreach"] = fresh_step(config, foreach=True)
    steps["zero_grad_zeros"] = fresh_step(config, ZeroGradZeros)
    steps["restore_lerp"] = fresh_step(config, LerpRestore)
    steps["restore_where_out"] = fresh_step(config, WhereOutRestore)
    steps["restore_index"] = fresh_step(config, IndexRestore)
    two = fresh_step(config)

    def threads2():
        torch.set_num_threads(2)
        try:
            return two()
        finally:
            torch.set_num_threads(threads)
    steps["threads2"] = threads2
    return steps


def compare_variants(config, repeats, threads, only):
    steps = variant_steps(config, threads)
    if only:
        steps = {k: v for k, v in steps.items() if k in only.split(",") or k == "plain"}
    first = {}
    for name, step in steps.items():
        first[name] = step()[1][0].item()
    times = collections.defaultdict(list)
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append((time.perf_counter() - start) * 1e3)
    base = statistics.median(times["plain"])
    print(f"{'variant':18} {'median ms':>10} {'vs plain':>9} {'min ms':>9}  first loss (diff to plain)")
    for name in steps:
        ms = statistics.median(times[name])
        print(f"{name:18} {ms:10.1f} {ms / base:9.3f} {min(times[name]):9.1f}  "
              f"{first[name]:.9g} ({first[name] - first['plain']:+.2e})")


def interleaved_medians(bodies, repeats):
    """Median ms of each body without gradients, timed round by round (round r runs every
    body once), so that load on the machine hits them alike."""
    times = collections.defaultdict(list)
    with torch.no_grad():
        for _ in range(repeats):
            for name, body in bodies.items():
                start = time.perf_counter()
                body()
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def compare_restore(config, repeats):
    """The restoration alone, each way, and the uniform draws it needs on their own."""
    kinds = {"plain copy_(where)": OCLStep, "lerp_": LerpRestore, "where(out=p)": WhereOutRestore,
             "p[mask] = s[mask]": IndexRestore}
    base = fresh_step(config)
    bodies = {}
    for name, cls in kinds.items():
        step = copy.copy(base)
        step.__class__ = cls
        bodies[name] = step.restore
    bodies["draws only"] = lambda: [torch.rand(p.shape, generator=base.generator) < MASK_RATIO for p in base.params]
    medians = interleaved_medians(bodies, repeats)
    print(f"{len(base.params)} tensors, {sum(p.numel() for p in base.params)} elements")
    for name, ms in medians.items():
        print(f"{name:20} {ms:8.2f} ms")


def compare_bn_stats(config, repeats):
    """The BN prior's statistics both ways (module docstring, `bn-stats`) on the inputs every
    batch norm saw in one step."""
    step = fresh_step(config)
    inputs = []
    hooks = [m.register_forward_hook(lambda m, i, o: inputs.append((m, i[0].detach())))
             for m in step.model.modules() if isinstance(m, nn.BatchNorm2d)]
    step()
    for hook in hooks:
        hook.remove()

    def var_mean():
        out = []
        for m, x in inputs:
            var, mean = torch.var_mean(x, dim=[0, 2, 3], unbiased=True)
            out.append((BN_PRIOR * m.running_mean + (1 - BN_PRIOR) * mean,
                        BN_PRIOR * m.running_var + (1 - BN_PRIOR) * var))
        return out

    def update_stats():
        out = []
        for m, x in inputs:
            mean, var = m.running_mean.clone(), m.running_var.clone()
            torch.batch_norm_update_stats(x, mean, var, 1 - BN_PRIOR)
            out.append((mean, var))
        return out

    def sums():
        return [x.sum(dim=(0, 2, 3)) for _, x in inputs]

    bodies = {"var_mean": var_mean, "batch_norm_update_stats": update_stats, "sum_only": sums}
    difference = max(((a - b).abs() / b.abs().clamp_min(1e-6)).max().item()
                     for pair in zip(var_mean(), update_stats()) for a, b in zip(*pair))
    medians = interleaved_medians(bodies, repeats)
    print(f"{len(inputs)} batch norms; largest relative difference of the statistics {difference:.1e}")
    for name, ms in medians.items():
        print(f"{name:24} {ms:8.2f} ms")


def classifier_as_product(x, convs):
    """The sum of the dilated 3x3 convolutions `convs` (padding = dilation) on x [N, C, h, w],
    as SegTTT's DeepLabV2Classifier computes it: Z = [V_1; V_2; ...] X with X = x as
    [C, N h w] and V the summed taps at each distinct offset inside the map, then each block
    of Z added at its shift."""
    n, c, h, w = x.shape
    classes = convs[0].out_channels
    offsets, taps = [], []
    for conv in convs:
        d = conv.dilation[0]
        for a in (-1, 0, 1):
            for b in (-1, 0, 1):
                offset = (a * d, b * d)
                if abs(offset[0]) >= h or abs(offset[1]) >= w:
                    continue
                tap = conv.weight[:, :, a + 1, b + 1]
                if offset in offsets:
                    taps[offsets.index(offset)] = taps[offsets.index(offset)] + tap
                else:
                    offsets.append(offset)
                    taps.append(tap)
    z = (torch.cat(taps) @ x.transpose(0, 1).reshape(c, n * h * w)).reshape(len(offsets), classes, n, h, w)
    out = torch.zeros(classes, n, h, w) + sum(conv.bias for conv in convs).view(classes, 1, 1, 1)
    for k, (dy, dx) in enumerate(offsets):
        rows, columns = h - abs(dy), w - abs(dx)
        out[:, :, max(-dy, 0):max(-dy, 0) + rows, max(-dx, 0):max(-dx, 0) + columns] += \
            z[k, :, :, max(dy, 0):max(dy, 0) + rows, max(dx, 0):max(dx, 0) + columns]
    return out.transpose(0, 1).contiguous()


def compare_classifier(config, repeats):
    """The main head both ways (module docstring, `classifier`) with the model's weights."""
    network, height, width, _ = CONFIGS[config]
    assert network == "deeplab", "the classifier mode needs a deeplab configuration"
    model, _ = build(network)
    convs = list(model.layer6.conv2d_list[:2])
    feature = (lambda n: ((n - 1) // 2 + 1) // 2 + 1)
    h, w = (feature(height) - 1) // 2 + 1, (feature(width) - 1) // 2 + 1
    x = torch.empty(2, 2048, h, w).normal_(generator=torch.Generator().manual_seed(0)).requires_grad_()
    forms = {"convolutions": lambda: sum(conv(x) for conv in convs),
             "matrix product": lambda: classifier_as_product(x, convs)}
    difference = (forms["convolutions"]() - forms["matrix product"]()).abs().max().item()

    def forward_backward(form):
        def body():
            with torch.enable_grad():
                x.grad = None
                form().sum().backward()
        return body

    medians = interleaved_medians({name: forward_backward(f) for name, f in forms.items()}, repeats)
    print(f"x {list(x.shape)}; largest difference of the outputs {difference:.1e}")
    for name, ms in medians.items():
        print(f"{name:16} {ms:8.2f} ms")


def compare_prediction(config, repeats):
    """The prediction's argmax both ways (module docstring, `prediction`) on the step's logits."""
    step = fresh_step(config)
    views = torch.cat([step.x, step.x.flip(3)])
    with torch.no_grad():
        logits = main_logits(step.model, views)
    scores = torch.stack([logits[0], logits[1].flip(2)]).mean(0, keepdim=True)
    same = torch.equal(scores.argmax(1), scores.max(1).indices)
    medians = interleaved_medians({"argmax(dim=1)": lambda: scores.argmax(1),
                                   "max(dim=1).indices": lambda: scores.max(1).indices}, repeats)
    print(f"scores {list(scores.shape)}; the same indices: {same}")
    for name, ms in medians.items():
        print(f"{name:20} {ms:8.2f} ms")


def compare_sums(config, repeats):
    """The ESP blocks' fusion both ways (module docstring, `sums`) at the step's shapes."""
    step = fresh_step(config)
    blocks = []
    hooks = [m.register_forward_hook(lambda m, i, o: blocks.append([t.shape for t in o.split(
        [m.d1.conv.out_channels] + [m.d2.conv.out_channels] * 4, 1)]))
             for m in step.model.modules() if hasattr(m, "d16")]
    step()
    for hook in hooks:
        hook.remove()
    generator = torch.Generator().manual_seed(0)
    cases = []
    for shapes in blocks:
        branches = [torch.empty(shape).normal_(generator=generator).requires_grad_() for shape in shapes]
        upstream = torch.cat([torch.empty(shape).normal_(generator=generator) for shape in shapes], 1)
        cases.append((branches, upstream))

    def fusion(d):
        a = [d[1]]
        for t in d[2:]:
            a.append(a[-1] + t)
        return torch.cat([d[0]] + a, 1)

    def forward_backward(form):
        def body():
            with torch.enable_grad():
                for branches, upstream in cases:
                    for t in branches:
                        t.grad = None
                    form(branches).backward(upstream)
        return body

    forms = {"sums and cat": fusion, "cat alone": lambda d: torch.cat(d, 1)}
    medians = interleaved_medians({name: forward_backward(f) for name, f in forms.items()}, repeats)
    print(f"{len(cases)} ESP blocks in the step; first {[list(s) for s in blocks[0]]}")
    for name, ms in medians.items():
        print(f"{name:14} {ms:8.2f} ms")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["ops", "convs", "variants", "restore", "bn-stats", "classifier",
                                             "prediction", "sums"])
    parser.add_argument("--config", default="espnet_480x360", choices=list(CONFIGS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", help="comma-separated variants to compare with plain")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.mode} {args.config} threads {torch.get_num_threads()} repeats {args.repeats} "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')} GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT')}")
    if args.mode == "ops":
        profile_ops(args.config, args.repeats)
    elif args.mode == "convs":
        time_convs(args.config, args.repeats)
    elif args.mode == "variants":
        compare_variants(args.config, args.repeats, args.threads, args.only)
    elif args.mode == "restore":
        compare_restore(args.config, args.repeats)
    elif args.mode == "bn-stats":
        compare_bn_stats(args.config, args.repeats)
    elif args.mode == "classifier":
        compare_classifier(args.config, args.repeats)
    elif args.mode == "prediction":
        compare_prediction(args.config, args.repeats)
    else:
        compare_sums(args.config, args.repeats)


if __name__ == "__main__":
    main()
