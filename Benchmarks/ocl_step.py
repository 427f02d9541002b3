"""The OCL test-time step (shared/ALGORITHM.md) in PyTorch eager, to compare with the Swift
step on libtorch. Run with Debian's python3-torch (1.13), or with the current PyTorch that
Scripts/install_current_torch.sh puts in .venv-torch (--compile needs PyTorch 2):

    /usr/bin/python3 Benchmarks/ocl_step.py [--threads N] [--repeats N] [--only NAME] [--json OUT]
        [--device cpu|cuda[:N]] [--compile]

NAME is a configuration (espnet_480x360, espnet_torchscript_480x360, deeplab_512x256,
deeplab_1024x512), `negative` or
`matmul`. Every measurement runs in its own subprocess, so that its peak resident memory
(VmHWM, reset through /proc/self/clear_refs before each phase) is its own. Times are
medians over `repeats` runs after one warm-up run. With `--device cuda` the model and the
inputs live on the GPU and every timed run waits for its kernels; random draws stay on the
CPU generator, so the numbers drawn are the same on every device.

Per configuration:
(a) source-only forward: evaluation mode, no gradient, one view [1, 3, H, W].
(b) one OCL step: x2 = [x, flipW(x)]; z = logits of x2 with BN prior 0.85 in every
    BatchNorm (mean = 0.85 m_src + 0.15 m_batch, var = 0.85 v_src + 0.15 v_batch, v_batch
    unbiased over both views, no gradient through the batch statistics, m_src and v_src
    never updated); z[1] = flipW(z[1]); q = l2normalize(softmax(z, C), C) per pixel;
    pos = -(1/N) sum_i q_0[i] . q_1[i]; neg = (1/2) sum_v ||(1/N) sum_i q_v[i]||^2, which
    equals the mean of q_v[i] . q_v[j] over all N^2 pixel pairs; loss = 3 pos + 1 neg;
    prediction = argmax_C of (z[0] + z[1]) / 2 from the same forward; one SGD step (lr 2e-5,
    momentum 0.9, weight decay 5e-4) on every trainable parameter; then stochastic
    restoration: every element of every trainable parameter, in state-dict order, returns
    to its source value where U(0, 1) < 0.01, U drawn by a torch.Generator seeded 0.
    The loss printed is that of the first step, on fixed weights and a fixed input: a
    torch.Generator seeded 0 draws an RGB image [1, 3, H, W] uniform in [0, 255), which is
    normalised by the model card (ESPNet: BGR, (x - mean) / std / 255; DeepLab: BGR,
    x - mean). ESPNet uses the Cityscapes checkpoint espnet_p_2_q_8.pth from
    ../shared/data/weights/espnet when present (else PyTorch's default init after
    torch.manual_seed(0)); DeepLabV2-ResNet-101 (19 classes, published two-branch
    classifier, stem BatchNorm frozen) draws its weights as Scripts/fixtures/deeplab.py
    does (draw_weights with a generator seeded 101, then rescale_convolutions).
(d) convolution FLOPs, counted by forward hooks: a Conv2d output costs
    2 * (Cin / groups) * kh * kw per output element; a ConvTranspose2d costs
    2 * (Cout / groups) * kh * kw per input element. Backward rule: the weight gradient
    costs the forward FLOPs again when the weight requires a gradient, and the input
    gradient costs them again when the input requires one (so 2x the forward, except for
    the first convolution on the image, 1x). FLOP/s = counted FLOPs / median time.

(c) `negative`: the negative term alone on q = l2normalize(softmax(z)) of logits
    z [2, 19, 512, 1024] (N = 512 * 1024 pixels per view), forward + backward from q:
    the exact form ||mean_i q_v[i]||^2 at full resolution, against the Gram form
    mean(Q_v^T Q_v) on q[:, :, ::d, ::d] for d = 16, 8, 4, 2, 1. The Gram matrix of one view
    holds N_d^2 float32 (N_d = (512 / d) * (1024 / d)); its backward needs a second one, so
    a stride runs only where 2 * N_d^2 * 4 bytes <= 8 GiB, else it is reported as not fitting.
`matmul`: float32 [2048, 2048] @ [2048, 2048], 2 * 2048^3 FLOPs, on the same threads.
(e) `gram-step` (selected with deeplab_1024x512): the OCL step of (b) at 1024x512 with the
    negative term in the Gram form at stride 4, as the published code must run it there
    (stride 2 needs a 64 GiB matrix per view): its time, peak memory and first loss.
(f) `--compile` (PyTorch 2): each configuration's step of (b) with the forward and the loss
    under torch.compile (inductor; AOTAutograd makes their backward), the optimizer step
    and the restoration eager. Its median time after the first call, and the first call's
    time apart: that one traces and compiles with an empty inductor cache of its own.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

from timing import median_ms  # noqa: E402
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "Scripts", "fixtures"))
from deeplab import DeepLabMulti, draw_weights, rescale_convolutions  # noqa: E402
from common import save_safetensors  # noqa: E402
from espnet import ESPNet  # noqa: E402
sys.path.insert(0, os.path.join(ROOT, "Scripts"))
from export_espnet_torchscript import card as espnet_card  # noqa: E402

CONFIGS = {  # name: (network, height, width, default repeats)
    "espnet_480x360": ("espnet", 360, 480, 7),
    # The same network and step in eager PyTorch; segttt-bench runs it from the scripted file.
    "espnet_torchscript_480x360": ("espnet-torchscript", 360, 480, 7),
    "deeplab_512x256": ("deeplab", 256, 512, 3),
    "deeplab_1024x512": ("deeplab", 512, 1024, 1),
}
ESPNET_WEIGHTS = os.path.join(ROOT, "..", "shared", "data", "weights", "espnet", "espnet_p_2_q_8.pth")
# Model cards: BGR order, 0..255 scale; y = (x - mean) / std * scale.
CARDS = {
    "espnet": ((72.3923111, 82.90893555, 73.15840149), (45.3192215, 46.15289307, 44.91483307), 1 / 255),
    "espnet-torchscript": ((72.3923111, 82.90893555, 73.15840149), (45.3192215, 46.15289307, 44.91483307), 1 / 255),
    "deeplab": ((104.00698793, 116.66876762, 122.67891434), (1.0, 1.0, 1.0), 1.0),
}
BN_PRIOR = 0.85
POS_COEFF, NEG_COEFF = 3.0, 1.0
LR, MOMENTUM, WEIGHT_DECAY = 2e-5, 0.9, 5e-4
MASK_RATIO = 0.01
NEG_SHAPE = (2, 19, 512, 1024)
NEG_STRIDES = (16, 8, 4, 2, 1)
# The published step at the published resolution needs the Gram form's stride 4 to fit:
# at stride 2 one view's Gram matrix alone takes 64 GiB.
GRAM_STEP = ("deeplab_1024x512", 4)
GRAM_LIMIT = 8 * 2**30
MATMUL_SIZE = 2048


def reset_peak():
    """Resets this process's peak resident set size (VmHWM) to the current one."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_mib():
    """Peak resident set size of this process since the last reset_peak, in MiB."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def build(network, export=None):
    """The network of a configuration with its fixed weights, and a note on their origin.
    DeepLab's weights are also written to the folder `export` when given: segttt-bench loads
    them from there, so that both sides compute the same loss; so is ESPNet scripted, for the
    TorchScript configuration."""
    if network.startswith("espnet"):
        torch.manual_seed(0)
        model = ESPNet(20, 2, 8, 16)
        origin = "torch.manual_seed(0) default init"
        if os.path.exists(ESPNET_WEIGHTS):
            model.load_state_dict(torch.load(ESPNET_WEIGHTS, map_location="cpu"), strict=True)
            origin = "espnet_p_2_q_8.pth"
        if network == "espnet-torchscript" and export:
            torch.jit.script(model.eval()).save(os.path.join(export, "espnet_p_2_q_8.scripted.pt"))
            with open(os.path.join(export, "espnet_p_2_q_8.scripted.yaml"), "w") as f:
                f.write(espnet_card("espnet_p_2_q_8 (scripted)", 20))
        return model, origin
    model = DeepLabMulti("resnet101", 19)
    draw_weights(model, torch.Generator().manual_seed(101))
    rescale_convolutions(model)
    for p in model.bn1.parameters():
        p.requires_grad_(False)
    path = export and os.path.join(export, "deeplab_resnet101.safetensors")
    if path and not os.path.exists(path):
        save_safetensors(model.state_dict(), path)
    return model, "deeplab.py draw_weights(seed 101) + rescale_convolutions"


def fixed_input(network, height, width):
    """Uniform [0, 255) RGB image from a generator seeded 0, normalised by the model card."""
    image = torch.empty(1, 3, height, width).uniform_(0, 255, generator=torch.Generator().manual_seed(0))
    mean, std, scale = CARDS[network]
    bgr = image.flip(1)
    return (bgr - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1) * scale


def use_bn_prior(model, prior):
    """Every BatchNorm normalises with prior * source + (1 - prior) * batch statistics
    (unbiased batch variance over all views, computed without gradient)."""
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        def forward(x, bn=bn):
            with torch.no_grad():
                var, mean = torch.var_mean(x, dim=(0, 2, 3), unbiased=True)
                mean = prior * bn.running_mean + (1 - prior) * mean
                var = prior * bn.running_var + (1 - prior) * var
            return F.batch_norm(x, mean, var, bn.weight, bn.bias, False, 0.0, bn.eps)
        bn.forward = forward


def main_logits(model, x):
    """The main head's logits: ESPNet returns them, DeepLabMulti returns (layer6, layer5)."""
    out = model(x)
    return out[0] if isinstance(out, tuple) else out


def ocl_loss(z, gram_stride=None):
    """(loss, pos, neg) of view logits z [2, C, H, W] whose second view is flipped back; the
    negative term exact, or in the published code's Gram form at gram_stride."""
    q = F.normalize(F.softmax(z, dim=1), dim=1)
    pos = -(q[0] * q[1]).sum(0).mean()
    neg = exact_negative(q) if gram_stride is None else gram_negative(q, gram_stride)
    return POS_COEFF * pos + NEG_COEFF * neg, pos, neg


class OCLStep:
    """One OCL step per call on a fixed frame x [1, 3, H, W]; see the module docstring."""

    def __init__(self, model, x, gram_stride=None, compiled=False):
        self.model, self.x, self.gram_stride = model, x, gram_stride
        model.eval()
        use_bn_prior(model, BN_PRIOR)
        # With `compiled`, torch.compile (inductor) traces the forward and the loss, and
        # AOTAutograd their backward; the optimizer step and the restoration stay eager.
        self.views_loss = torch.compile(self.eager_views_loss) if compiled else self.eager_views_loss
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.source = [p.detach().clone() for p in self.params]
        self.optimizer = torch.optim.SGD(self.params, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
        self.generator = torch.Generator().manual_seed(0)

    def eager_views_loss(self, x):
        """(view logits z [2, C, H, W] with the second flipped back, loss, pos, neg) of frame x."""
        z = main_logits(self.model, torch.cat([x, x.flip(3)]))
        z = torch.cat([z[:1], z[1:].flip(3)])
        return (z,) + ocl_loss(z, self.gram_stride)

    def __call__(self):
        """Returns the prediction [H, W] and the detached (loss, pos, neg) of this step."""
        z, loss, pos, neg = self.views_loss(self.x)
        prediction = z.detach().mean(0).argmax(0)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            self.restore()
        return prediction, (loss.detach(), pos.detach(), neg.detach())

    def restore(self):
        """p = s where U(0, 1) < MASK_RATIO, else p; one uniform draw per element."""
        for p, s in zip(self.params, self.source):
            mask = torch.rand(p.shape, generator=self.generator) < MASK_RATIO
            p.copy_(torch.where(mask.to(p.device), s, p))


class ConvFlops:
    """Counts convolution FLOPs of the forward passes run while active, and the backward
    FLOPs they imply (module docstring, part d)."""

    def __init__(self, model):
        self.forward = self.backward = 0
        self.handles = [m.register_forward_hook(self.hook) for m in model.modules()
                        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]

    def hook(self, module, inputs, output):
        x = inputs[0]
        per_element = 2 * module.weight[0].numel()
        flops = per_element * (x.numel() if isinstance(module, nn.ConvTranspose2d) else output.numel())
        self.forward += flops
        if torch.is_grad_enabled():
            self.backward += flops * (int(module.weight.requires_grad) + int(x.requires_grad))

    def remove(self):
        for h in self.handles:
            h.remove()


def run_compiled_step(name, repeats, device):
    """(f) The OCL step of (b) under torch.compile: its median time, the first call's time
    (tracing and compiling with an empty inductor cache, and one step), and the first loss."""
    network, height, width, _ = CONFIGS[name]
    model, weights = build(network)
    step = OCLStep(model.to(device), fixed_input(network, height, width).to(device), compiled=True)
    reset_peak()
    start = time.perf_counter()
    _, (loss, pos, neg) = step()
    first_ms = (time.perf_counter() - start) * 1e3
    step_ms = median_ms(step, repeats, warm_up=True, device=device)
    return {"name": name, "weights": weights, "mode": "compile", "repeats": repeats, "step_ms": step_ms,
            "first_call_ms": first_ms, "compile_ms": first_ms - step_ms, "step_peak_mib": peak_mib(),
            "loss": loss.item(), "pos": pos.item(), "neg": neg.item()}


def run_config(name, repeats, device, export=None):
    """(a), (b) and (d) of one configuration; the first OCL step is the warm-up and gives the loss."""
    network, height, width, _ = CONFIGS[name]
    model, weights = build(network, export)
    model.to(device)
    x = fixed_input(network, height, width).to(device)
    model.eval()
    counter = ConvFlops(model)
    with torch.no_grad():
        main_logits(model, x)
    counter.remove()
    forward_flops = counter.forward
    reset_peak()
    with torch.no_grad():
        forward_ms = median_ms(lambda: main_logits(model, x), repeats, warm_up=False, device=device)
    forward_peak = peak_mib()

    step = OCLStep(model, x)
    counter = ConvFlops(model)
    reset_peak()
    prediction, (loss, pos, neg) = step()
    counter.remove()
    step_ms = median_ms(step, repeats, warm_up=False, device=device)
    step_flops = counter.forward + counter.backward
    classes = model.classifier.out_channels if network.startswith("espnet") else model.layer6.conv2d_list[0].out_channels
    return {
        "name": name, "weights": weights, "height": height, "width": width, "repeats": repeats,
        "forward_ms": forward_ms, "forward_peak_mib": forward_peak,
        "step_ms": step_ms, "step_peak_mib": peak_mib(),
        "loss": loss.item(), "pos": pos.item(), "neg": neg.item(),
        "prediction_histogram": torch.bincount(prediction.flatten().cpu(), minlength=classes).tolist(),
        "forward_gflop": forward_flops / 1e9, "step_gflop_forward": counter.forward / 1e9,
        "step_gflop_backward": counter.backward / 1e9,
        "forward_gflops": forward_flops / forward_ms / 1e6, "step_gflops": step_flops / step_ms / 1e6,
    }


def run_gram_step(name, stride, repeats, device, export=None):
    """(e) The OCL step of a configuration with the negative term in the published code's
    Gram form at `stride` instead of the exact form: time, peak memory and first loss."""
    network, height, width, _ = CONFIGS[name]
    model, _ = build(network, export)
    step = OCLStep(model.to(device), fixed_input(network, height, width).to(device), gram_stride=stride)
    reset_peak()
    _, (loss, pos, neg) = step()
    step_ms = median_ms(step, repeats, warm_up=False, device=device)
    return {"name": name, "stride": stride, "repeats": repeats, "step_ms": step_ms, "step_peak_mib": peak_mib(),
            "loss": loss.item(), "pos": pos.item(), "neg": neg.item()}


def exact_negative(q):
    """(1/2) sum_v ||(1/N) sum_i q_v[i]||^2 of q [2, C, H, W]: O(N C)."""
    return q.mean(dim=(2, 3)).pow(2).sum(1).mean()


def gram_negative(q, stride):
    """(1/2) sum_v mean_ij (Q_v^T Q_v)_ij with Q_v = q_v[:, ::stride, ::stride] as [C, N]."""
    total = 0
    for v in range(q.shape[0]):
        qv = q[v, :, ::stride, ::stride].reshape(q.shape[1], -1)
        total = total + (qv.t() @ qv).mean()
    return total / q.shape[0]


def run_negative(form, stride, repeats, device):
    """Forward + backward time and peak memory of one negative-term form (part c)."""
    n = (NEG_SHAPE[2] // stride) * (NEG_SHAPE[3] // stride)
    result = {"form": form, "stride": stride, "pixels_per_view": n,
              "gram_bytes": n * n * 4 if form == "gram" else None}
    if form == "gram" and 2 * n * n * 4 > GRAM_LIMIT:
        return dict(result, fits=False)
    z = torch.empty(NEG_SHAPE).normal_(0, 3, generator=torch.Generator().manual_seed(0)).to(device)
    q = F.normalize(F.softmax(z, dim=1), dim=1).requires_grad_()
    term = exact_negative if form == "exact" else lambda t: gram_negative(t, stride)

    def body():
        q.grad = None
        value = term(q)
        value.backward()
        return value

    value = body().item()
    reset_peak()
    ms = median_ms(body, repeats, warm_up=False, device=device)
    result.update(fits=True, ms=ms, peak_mib=peak_mib(), value=value)
    if form == "gram":
        result["exact_at_stride"] = exact_negative(q.detach()[:, :, ::stride, ::stride]).item()
    return result


def run_matmul(repeats, device):
    """Median FLOP/s of a float32 [S, S] @ [S, S] product, S = MATMUL_SIZE."""
    g = torch.Generator().manual_seed(0)
    a, b = (torch.empty(MATMUL_SIZE, MATMUL_SIZE).normal_(generator=g).to(device) for _ in range(2))
    c = torch.empty(MATMUL_SIZE, MATMUL_SIZE, device=device)
    torch.mm(a, b, out=c)
    ms = median_ms(lambda: torch.mm(a, b, out=c), repeats, warm_up=False, device=device)
    return {"size": MATMUL_SIZE, "ms": ms, "gflops": 2 * MATMUL_SIZE**3 / ms / 1e6}


def child(args):
    """Runs one measurement named by args.child and prints its figures as one JSON line."""
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(args.denormals == "flush")
    device = torch.device(args.device)
    kind, _, rest = args.child.partition(":")
    if kind == "config" and args.compile:
        with tempfile.TemporaryDirectory(prefix="inductor-") as cache:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
            result = run_compiled_step(rest, args.repeats or CONFIGS[rest][3], device)
    elif kind == "config":
        result = run_config(rest, args.repeats or CONFIGS[rest][3], device, args.export_weights)
    elif kind == "negative":
        form, stride = rest.split(",")
        result = run_negative(form, int(stride), args.repeats or 5, device)
    elif kind == "gram-step":
        name, stride = rest.split(",")
        result = run_gram_step(name, int(stride), args.repeats or CONFIGS[name][3], device, args.export_weights)
    else:
        result = run_matmul(args.repeats or 7, device)
    result["torch"] = torch.__version__
    print(json.dumps(result))


def jobs(only):
    """(group, child argument) of every measurement selected by --only."""
    selected = []
    for name in CONFIGS:
        if only in (None, name):
            selected.append(("configs", "config:" + name))
    if only in (None, GRAM_STEP[0]):
        selected.append(("gram-step", "gram-step:%s,%d" % GRAM_STEP))
    if only in (None, "negative"):
        selected.append(("negative", "negative:exact,1"))
        selected += [("negative", f"negative:gram,{d}") for d in NEG_STRIDES]
    if only in (None, "matmul"):
        selected.append(("matmul", "matmul:"))
    return selected


def table(results, threads, device):
    """The readable summary of all results."""
    lines = [f"threads {threads}, torch {torch.__version__}, device {device}"]
    configs = results.get("configs", [])
    matmul = results.get("matmul", [None])[0]
    if configs:
        lines.append(f"{'configuration':18} {'fwd ms':>9} {'fwd MiB':>8} {'step ms':>9} {'step MiB':>8} "
                     f"{'step GFLOP':>10} {'GFLOP/s':>8} {'of mm':>6}  loss (first step)")
        for r in configs:
            if r.get("mode") == "compile":
                lines.append(f"{r['name']:18} compiled step {r['step_ms']:.1f} ms, first call {r['first_call_ms']:.0f} ms, "
                             f"{r['step_peak_mib']:.0f} MiB, loss {r['loss']:.9g} (pos {r['pos']:.9g}, neg {r['neg']:.9g})")
                continue
            gflop = r["step_gflop_forward"] + r["step_gflop_backward"]
            share = f"{r['step_gflops'] / matmul['gflops']:.2f}" if matmul else "-"
            lines.append(f"{r['name']:18} {r['forward_ms']:9.1f} {r['forward_peak_mib']:8.0f} {r['step_ms']:9.1f} "
                         f"{r['step_peak_mib']:8.0f} {gflop:10.2f} {r['step_gflops']:8.2f} {share:>6}  "
                         f"{r['loss']:.9g} (pos {r['pos']:.9g}, neg {r['neg']:.9g})")
    for r in results.get("gram-step", []):
        lines.append(f"{r['name']:18} step with the Gram negative at stride {r['stride']}: {r['step_ms']:.1f} ms, "
                     f"{r['step_peak_mib']:.0f} MiB, loss {r['loss']:.9g} (neg {r['neg']:.9g})")
    if matmul:
        lines.append(f"matmul {matmul['size']}^2 fp32: {matmul['ms']:.1f} ms, {matmul['gflops']:.2f} GFLOP/s")
    negatives = results.get("negative", [])
    if negatives:
        lines.append(f"negative term on {list(NEG_SHAPE)}, forward + backward from q:")
        lines.append(f"{'form':6} {'stride':>6} {'N/view':>8} {'Gram bytes':>12} {'ms':>9} {'peak MiB':>9}  value")
        for r in negatives:
            gram = f"{r['gram_bytes'] / 2**20:.0f} MiB" if r["gram_bytes"] else "-"
            if r["fits"]:
                value = f"{r['value']:.9g}" + (f" (exact at stride: {r['exact_at_stride']:.9g})"
                                               if r["form"] == "gram" else "")
                lines.append(f"{r['form']:6} {r['stride']:6} {r['pixels_per_view']:8} {gram:>12} {r['ms']:9.1f} "
                             f"{r['peak_mib']:9.0f}  {value}")
            else:
                lines.append(f"{r['form']:6} {r['stride']:6} {r['pixels_per_view']:8} {gram:>12} "
                             f"{'does not fit (Gram + its gradient > 8 GiB)':>20}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per measurement (default: 7 ESPNet, 3 / 1 DeepLab 512x256 / 1024x512)")
    parser.add_argument("--only", choices=list(CONFIGS) + ["negative", "matmul"])
    parser.add_argument("--json")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--denormals", choices=["flush", "keep"], default="flush",
                        help="flush denormals to zero (torch.set_flush_denormal), as segttt does, or keep them")
    parser.add_argument("--compile", action="store_true",
                        help="time the OCL step of each configuration under torch.compile (PyTorch 2) instead")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--export-weights", help="folder to write the DeepLab weights to, for segttt-bench")
    args = parser.parse_args()
    if args.compile and not hasattr(torch, "compile"):
        parser.error(f"--compile: torch {torch.__version__} has no torch.compile; run it with PyTorch 2 or later")
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: this PyTorch has no CUDA or sees no GPU")
    if args.child:
        child(args)
        return
    results = {"threads": args.threads, "torch": torch.__version__}
    for group, job in jobs(args.only):
        command = [sys.executable, __file__, "--child", job, "--threads", str(args.threads), "--device", args.device]
        if args.repeats:
            command += ["--repeats", str(args.repeats)]
        if args.compile:
            if group != "configs":
                continue
            command.append("--compile")
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        print(group, json.dumps(result), flush=True)
        results.setdefault(group, []).append(result)
    print(table(results, args.threads, args.device))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
