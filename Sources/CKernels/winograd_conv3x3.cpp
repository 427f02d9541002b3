// 3x3 convolutions with stride 1 and padding equal to their dilation (d_h, d_w), for many
// channels (DeepLabV2's bottlenecks: 64 to 512), by oneDNN's Winograd kernels F(4x4, 3x3):
//
//     y[n, o, i, j] = b[o] + sum_c sum_{a, e in 0..2} w[o, c, a, e] x[n, c, i + (a - 1) d_h, j + (e - 1) d_w]
//
// with x = 0 outside the image. Winograd's minimal filtering computes each 4x4 tile of outputs
// from a 6x6 tile of inputs with 36 products per (o, c) instead of 144: the tiles are taken to
// the transformed domain (B^T d B, G g G^T), multiplied there elementwise, which over the
// channels is 36 matrix products, and taken back (A^T m A). oneDNN has these kernels, forward,
// for the input's gradient and for the weight's, but libtorch calls only its direct ones.
//
// oneDNN's Winograd kernels take no dilation, so a dilated convolution is first split into its
// d_h d_w phases (space to batch): output row i reads input rows i and i +- d_h only, all of
// phase i mod d_h, so each phase x[n, c, r::d_h, s::d_w] convolved with the undilated kernel
// and padding 1 gives the output's same phase. The phases of an image are laid side by side
// in one grid image with a row and a column of zeros between them (`to_grid`), which the
// undilated convolution cannot see across, so that the 4x4 tiles cover one larger image
// rather than d_h d_w small ones with a partial tile at each edge. The backward pass lays dy
// out the same way: dx is the backward-data of the grid taken back to the image, dw and db
// the backward-weights over the grid, all by oneDNN.
//
// Only compiled where the build links the oneDNN (2.x) that libtorch itself runs
// (CKERNELS_WITH_ONEDNN, Debian's libtorch with libdnnl-dev); elsewhere, and on CPUs for which
// oneDNN has no Winograd kernel (it has them for AVX-512 only), `ck_winograd_available` says no.
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include "ctorch_internal.h"
#include "ckernels.h"

#if CKERNELS_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>

#include <atomic>
#include <optional>
#include <utility>

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using tag = dnnl::memory::format_tag;
using dnnl::memory;

dnnl::engine &cpu_engine() {
    static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

/// Whether x [N, C, H, W] lies in memory channels last (NHWC), the layout oneDNN's 1x1
/// convolutions read without reordering; the kernel keeps the input's layout for its output.
bool channels_last(const at::Tensor &x) { return x.suggest_memory_format() == at::MemoryFormat::ChannelsLast; }

/// The memory format of a layout: channels last (NHWC) where `last`, NCHW otherwise.
at::MemoryFormat format_of(bool last) { return last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous; }

/// x [N, C, H, W] dense in the given layout.
at::Tensor dense(const at::Tensor &x, bool last) { return x.contiguous(format_of(last)); }

/// The phase grid's sizes for an image of h x w under dilation (dh, dw): phases of ph x pw
/// pixels, each followed by a row and a column of zeros.
struct Grid {
    int64_t h, w, dh, dw;
    int64_t ph() const { return (h + dh - 1) / dh; }
    int64_t pw() const { return (w + dw - 1) / dw; }
    int64_t height() const { return dh * (ph() + 1); }
    int64_t width() const { return dw * (pw() + 1); }
    /// The view of a dense grid image of `t` [N, C, height, width] as [N, C, dh, ph + 1, dw, pw + 1].
    at::Tensor blocks(const at::Tensor &t, bool last) const {
        const int64_t n = t.size(0), c = t.size(1);
        if (!last) return t.view({n, c, dh, ph() + 1, dw, pw() + 1});
        return t.permute({0, 2, 3, 1}).view({n, dh, ph() + 1, dw, pw() + 1, c}).permute({0, 5, 1, 2, 3, 4});
    }
    /// Runs body(r, s, rows, columns) for every phase: rows x columns of its pixels are the image's.
    template <typename Body>
    void for_each_phase(Body body) const {
        for (int64_t r = 0; r < dh; ++r) {
            for (int64_t s = 0; s < dw; ++s) body(r, s, (h - r + dh - 1) / dh, (w - s + dw - 1) / dw);
        }
    }
};

/// An uninitialised tensor of `sizes` [N, C, H, W] like `like`, laid out channels last where `last`.
at::Tensor empty_laid_out(at::IntArrayRef sizes, const at::Tensor &like, bool last) {
    return at::empty(sizes, like.options(), format_of(last));
}

/// The phase grid of x [N, C, H, W] under dilation (dh, dw), dense, channels last where
/// `last`: per image one [C, dh (ph + 1), dw (pw + 1)] whose block (r, s), of ph x pw pixels
/// at row r (ph + 1) and column s (pw + 1), holds the phase x[n, :, r::dh, s::dw], and zeros
/// elsewhere (one row and one column after each block, and past the image). A 3x3 convolution
/// with padding 1 of the grid is, inside each block, the dilated convolution's output of that
/// phase: its taps reach the same phase's neighbours or zeros, as the dilated taps do. One
/// image per input image rather than dh dw small ones keeps the 4x4 tiles of Winograd's
/// kernel mostly inside the image.
at::Tensor to_grid(const at::Tensor &x, const Grid &g, bool last) {
    if (g.dh == 1 && g.dw == 1) return dense(x, last);
    const at::Tensor grid = empty_laid_out({x.size(0), x.size(1), g.height(), g.width()}, x, last).zero_();
    const at::Tensor blocks = g.blocks(grid, last);
    g.for_each_phase([&](int64_t r, int64_t s, int64_t rows, int64_t columns) {
        blocks.select(4, s).select(2, r).narrow(2, 0, rows).narrow(3, 0, columns).copy_(
            x.slice(2, r, g.h, g.dh).slice(3, s, g.w, g.dw));
    });
    return grid;
}

/// The inverse of `to_grid`: [N, C, h, w] from a dense grid image, in its layout.
at::Tensor from_grid(const at::Tensor &y, const Grid &g, bool last) {
    if (g.dh == 1 && g.dw == 1) return y;
    const at::Tensor out = empty_laid_out({y.size(0), y.size(1), g.h, g.w}, y, last);
    const at::Tensor blocks = g.blocks(y, last);
    g.for_each_phase([&](int64_t r, int64_t s, int64_t rows, int64_t columns) {
        out.slice(2, r, g.h, g.dh).slice(3, s, g.w, g.dw).copy_(
            blocks.select(4, s).select(2, r).narrow(2, 0, rows).narrow(3, 0, columns));
    });
    return out;
}

/// The sizes of the undilated convolution on the grid images, as oneDNN describes them, and
/// the layout of the tensors that hold those images (NCHW, or NHWC where `last`).
struct Problem {
    memory::dims src, weights, bias, dst;
    bool last;
    memory::desc any(const memory::dims &d) const { return memory::desc(d, memory::data_type::f32, tag::any); }
    memory::desc plain(const memory::dims &d) const {
        return memory::desc(d, memory::data_type::f32, d.size() == 1 ? tag::a : tag::abcd);
    }
    memory::desc image(const memory::dims &d) const {
        return memory::desc(d, memory::data_type::f32, last ? tag::acdb : tag::abcd);
    }
};

Problem problem_of(const at::Tensor &images, int64_t outputs, bool last) {
    const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
    return Problem{{n, c, h, w}, {outputs, c, 3, 3}, {outputs}, {n, outputs, h, w}, last};
}

const memory::dims kStrides{1, 1}, kDilation{0, 0}, kPadding{1, 1};

/// Primitive attributes asking for the scratchpad (the transformed tiles and weights) from the
/// caller: oneDNN would map tens of MiB afresh at every call, above glibc's largest mmap
/// threshold, and fault every page in again.
dnnl::primitive_attr user_scratchpad() {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
}

/// Adds to `args` the calling thread's scratchpad, grown to the size `pd` asks for and kept
/// for the thread's next calls.
void add_scratchpad(const dnnl::primitive_desc_base &pd, std::unordered_map<int, memory> &args) {
    thread_local std::vector<float> buffer;
    const memory::desc desc = pd.scratchpad_desc();
    const size_t floats = desc.get_size() / sizeof(float) + 16;
    if (buffer.size() < floats) {
        buffer = std::vector<float>();  // the old pages go before the new ones come
        buffer.resize(floats);
    }
    // oneDNN wants 64-byte alignment; the vector's storage gives 16, so skip to the next 64.
    const uintptr_t at = reinterpret_cast<uintptr_t>(buffer.data());
    args.emplace(DNNL_ARG_SCRATCHPAD, memory(desc, cpu_engine(), reinterpret_cast<void *>((at + 63) & ~uintptr_t(63))));
}

dnnl::convolution_forward::primitive_desc forward_desc(const Problem &p, bool bias) {
    const auto alg = dnnl::algorithm::convolution_winograd;
    const auto kind = dnnl::prop_kind::forward_training;
    auto d = bias ? dnnl::convolution_forward::desc(kind, alg, p.any(p.src), p.any(p.weights), p.any(p.bias),
                                                    p.any(p.dst), kStrides, kDilation, kPadding, kPadding)
                  : dnnl::convolution_forward::desc(kind, alg, p.any(p.src), p.any(p.weights), p.any(p.dst),
                                                    kStrides, kDilation, kPadding, kPadding);
    return dnnl::convolution_forward::primitive_desc(d, user_scratchpad(), cpu_engine());
}

/// A contiguous float32 tensor's values as oneDNN memory of layout `want`: the tensor's own
/// storage where `want` is its plain layout, a reordered copy otherwise (kept alive by `keep`).
memory as_memory(const at::Tensor &t, const memory::desc &plain, const memory::desc &want, dnnl::stream &s,
                 std::vector<at::Tensor> &keep) {
    memory user(plain, cpu_engine(), t.data_ptr<float>());
    if (want == plain) return user;
    keep.push_back(at::empty({static_cast<int64_t>(want.get_size() / sizeof(float))}, t.options()));
    memory laid(want, cpu_engine(), keep.back().data_ptr<float>());
    dnnl::reorder(user, laid).execute(s, user, laid);
    return laid;
}

/// An empty tensor of `sizes` in `format` written from oneDNN memory of layout `have` by `run`: in place
/// where `have` is the plain layout, through a buffer reordered after `run` otherwise.
template <typename Run>
at::Tensor written(at::IntArrayRef sizes, at::MemoryFormat format, const at::Tensor &like,
                   const memory::desc &plain, const memory::desc &have, dnnl::stream &s, Run run) {
    at::Tensor out = at::empty(sizes, like.options(), format);
    memory user(plain, cpu_engine(), out.data_ptr<float>());
    if (have == plain) {
        run(user);
        return out;
    }
    at::Tensor buffer = at::empty({static_cast<int64_t>(have.get_size() / sizeof(float))}, like.options());
    memory laid(have, cpu_engine(), buffer.data_ptr<float>());
    run(laid);
    dnnl::reorder(laid, user).execute(s, laid, user);
    return out;
}

struct WinogradConv3x3Function : public torch::autograd::Function<WinogradConv3x3Function> {
    /// `bias` is [O], or empty for none (libtorch 1.13's custom functions take no undefined inputs).
    static at::Tensor forward(AutogradContext *ctx, const at::Tensor &input, const at::Tensor &weight,
                              const at::Tensor &bias, int64_t dh, int64_t dw) {
        const bool last = channels_last(input);
        const Grid g{input.size(2), input.size(3), dh, dw};
        const at::Tensor x = to_grid(input, g, last), w = weight.contiguous(), b = bias.contiguous();
        const bool has_bias = b.numel() > 0;
        const Problem p = problem_of(x, w.size(0), last);
        const auto pd = forward_desc(p, has_bias);
        dnnl::stream s(cpu_engine());
        std::vector<at::Tensor> keep;
        std::unordered_map<int, memory> args{
            {DNNL_ARG_SRC, as_memory(x, p.image(p.src), pd.src_desc(), s, keep)},
            {DNNL_ARG_WEIGHTS, as_memory(w, p.plain(p.weights), pd.weights_desc(), s, keep)}};
        if (has_bias) args.emplace(DNNL_ARG_BIAS, memory(p.plain(p.bias), cpu_engine(), b.data_ptr<float>()));
        add_scratchpad(pd, args);
        const at::Tensor y = written(p.dst, format_of(last), x, p.image(p.dst), pd.dst_desc(), s, [&](memory &dst) {
            args.emplace(DNNL_ARG_DST, dst);
            dnnl::convolution_forward(pd).execute(s, args);
        });
        s.wait();
        ctx->save_for_backward({x, w});
        ctx->saved_data["dh"] = dh;
        ctx->saved_data["dw"] = dw;
        ctx->saved_data["h"] = input.size(2);
        ctx->saved_data["w"] = input.size(3);
        ctx->saved_data["bias"] = has_bias;
        ctx->saved_data["last"] = last;
        return from_grid(y, g, last);
    }

    static variable_list backward(AutogradContext *ctx, variable_list grads) {
        TORCH_CHECK(!at::GradMode::is_enabled(),
                    "SegTTT's Winograd 3x3 convolution has first derivatives only; for higher ones use "
                    "libtorch's convolution (Torch.conv2d)");
        const auto saved = ctx->get_saved_variables();
        const at::Tensor &x = saved[0], &w = saved[1];
        const int64_t dh = ctx->saved_data["dh"].toInt(), dw = ctx->saved_data["dw"].toInt();
        const bool has_bias = ctx->saved_data["bias"].toBool();
        const bool last = ctx->saved_data["last"].toBool();
        const Grid g{ctx->saved_data["h"].toInt(), ctx->saved_data["w"].toInt(), dh, dw};
        const at::Tensor dy = to_grid(grads[0], g, last);
        const Problem p = problem_of(x, w.size(0), last);
        const auto hint = forward_desc(p, has_bias);
        const auto alg = dnnl::algorithm::convolution_winograd;
        dnnl::stream s(cpu_engine());
        std::vector<at::Tensor> keep;
        // dy in the layout a pass wants, reordered once where both passes want the same one.
        std::optional<std::pair<memory::desc, memory>> dy_laid;
        const auto dy_as = [&](const memory::desc &want) {
            if (!dy_laid || !(dy_laid->first == want)) dy_laid.emplace(want, as_memory(dy, p.image(p.dst), want, s, keep));
            return dy_laid->second;
        };
        at::Tensor dx, dweight, dbias;
        if (ctx->needs_input_grad(0)) {
            const dnnl::convolution_backward_data::primitive_desc pd(
                dnnl::convolution_backward_data::desc(alg, p.any(p.src), p.any(p.weights), p.any(p.dst), kStrides,
                                                      kDilation, kPadding, kPadding),
                user_scratchpad(), cpu_engine(), hint);
            std::unordered_map<int, memory> args{
                {DNNL_ARG_DIFF_DST, dy_as(pd.diff_dst_desc())},
                {DNNL_ARG_WEIGHTS, as_memory(w, p.plain(p.weights), pd.weights_desc(), s, keep)}};
            add_scratchpad(pd, args);
            dx = written(p.src, format_of(last), x, p.image(p.src), pd.diff_src_desc(), s, [&](memory &dsrc) {
                args.emplace(DNNL_ARG_DIFF_SRC, dsrc);
                dnnl::convolution_backward_data(pd).execute(s, args);
            });
            dx = from_grid(dx, g, last);
        }
        if (ctx->needs_input_grad(1) || (has_bias && ctx->needs_input_grad(2))) {
            auto desc = has_bias ? dnnl::convolution_backward_weights::desc(
                                       alg, p.any(p.src), p.any(p.weights), p.any(p.bias), p.any(p.dst), kStrides,
                                       kDilation, kPadding, kPadding)
                                 : dnnl::convolution_backward_weights::desc(alg, p.any(p.src), p.any(p.weights),
                                                                            p.any(p.dst), kStrides, kDilation,
                                                                            kPadding, kPadding);
            const dnnl::convolution_backward_weights::primitive_desc pd(desc, user_scratchpad(), cpu_engine(), hint);
            std::unordered_map<int, memory> args{
                {DNNL_ARG_SRC, as_memory(x, p.image(p.src), pd.src_desc(), s, keep)},
                {DNNL_ARG_DIFF_DST, dy_as(pd.diff_dst_desc())}};
            add_scratchpad(pd, args);
            if (has_bias) {
                dbias = at::empty({w.size(0)}, w.options());
                args.emplace(DNNL_ARG_DIFF_BIAS, memory(p.plain(p.bias), cpu_engine(), dbias.data_ptr<float>()));
            }
            dweight = written(p.weights, at::MemoryFormat::Contiguous, w, p.plain(p.weights), pd.diff_weights_desc(), s, [&](memory &dwei) {
                args.emplace(DNNL_ARG_DIFF_WEIGHTS, dwei);
                dnnl::convolution_backward_weights(pd).execute(s, args);
            });
        }
        s.wait();
        return {dx, dweight, dbias, at::Tensor(), at::Tensor()};
    }
};

/// Whether oneDNN has a Winograd kernel for this CPU: asked once, on a small convolution.
bool winograd_kernels_exist() {
    static const bool exist = [] {
        try {
            const Problem p{{1, 16, 8, 8}, {16, 16, 3, 3}, {16}, {1, 16, 8, 8}, false};
            (void)forward_desc(p, true);
            return true;
        } catch (const dnnl::error &) {
            return false;
        }
    }();
    return exist;
}

std::atomic<bool> &winograd_enabled() {
    static std::atomic<bool> enabled{true};
    return enabled;
}

}  // namespace

extern "C" {

bool ck_winograd_available(void) { return winograd_enabled().load() && winograd_kernels_exist(); }

bool ck_use_winograd(bool on) {
    winograd_enabled().store(on);
    return !on || winograd_kernels_exist();
}

ct_status ck_winograd_conv3x3(ct_tensor input, ct_tensor weight, ct_tensor bias, int64_t dh, int64_t dw,
                              ct_tensor *out) {
    CT_PROTECT({
        const at::Tensor &x = input->tensor, &w = weight->tensor;
        const at::Tensor b = bias ? bias->tensor : at::Tensor();
        const char *kernel = "the Winograd 3x3 convolution";
        TORCH_CHECK(winograd_kernels_exist(), kernel, " needs oneDNN's Winograd kernels, which this CPU or build lacks");
        TORCH_CHECK(dh > 0 && dw > 0, kernel, " needs dilations of 1 or more, got ", dh, "x", dw);
        TORCH_CHECK(x.dim() == 4 && w.dim() == 4 && w.size(1) == x.size(1) && w.size(2) == 3 && w.size(3) == 3,
                    kernel, " needs input [N, C, H, W] and weight [O, C, 3, 3], got ", x.sizes(), " and ", w.sizes());
        ctorch::check_kernel_operands(kernel, {&x, &w, &b}, b, w.size(0));
        RECORD_FUNCTION("segttt::winograd_conv3x3", std::vector<c10::IValue>{});
        *out = ctorch::wrap(
            WinogradConv3x3Function::apply(x, w, b.defined() ? b : at::empty({0}, w.options()), dh, dw));
    })
}

}  // extern "C"

#else  // no oneDNN in this build

extern "C" {

bool ck_winograd_available(void) { return false; }

bool ck_use_winograd(bool on) { return !on; }

ct_status ck_winograd_conv3x3(ct_tensor, ct_tensor, ct_tensor, int64_t, int64_t, ct_tensor *) {
    CT_PROTECT({
        TORCH_CHECK(false, "the Winograd 3x3 convolution needs oneDNN's Winograd kernels, which this build lacks "
                           "(it links them with Debian's libtorch and libdnnl-dev)");
    })
}

}  // extern "C"

#endif
