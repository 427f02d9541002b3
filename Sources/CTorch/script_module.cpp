// TorchScript modules: loading a file saved by `torch.jit.save` (scripted or traced), its
// parameters, buffers and submodules, train/eval, the forward pass, and the redirection of
// every BatchNorm call of its forward graph to the host language, so that test-time methods
// decide which statistics each layer normalises with.
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/api/include/torch/version.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/library.h>
#include <torch/script.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <map>
#include <sstream>

#include "ctorch_internal.h"

struct ct_script_module_s {
    torch::jit::Module module;
};

namespace {

std::atomic<int64_t> live_script_modules{0};
std::atomic<ct_batch_norm_callback> batch_norm_callback{nullptr};
std::atomic<ct_convolution_callback> convolution_callback{nullptr};

char *copy_string(const std::string &s) {
    char *out = static_cast<char *>(std::malloc(s.size() + 1));
    TORCH_CHECK(out, "out of memory");
    std::memcpy(out, s.c_str(), s.size() + 1);
    return out;
}

const c10::Symbol redirected_batch_norm = c10::Symbol::fromQualString("segttt::batch_norm");

/// The tensor a host callback returned in `out` (whose handle is freed), or its error.
at::Tensor callback_result(ct_status status, ct_tensor out, const char *callback) {
    if (status != CT_OK || !out) {
        std::string message = ct_last_error();
        if (out) ct_tensor_free(out);
        TORCH_CHECK(false, message.empty() ? std::string(callback) + " returned no tensor" : message);
    }
    at::Tensor result = out->tensor;
    ct_tensor_free(out);
    return result;
}

/// `segttt::batch_norm`: aten::batch_norm's arguments, then the model and layer the host's
/// callback is asked about. Without a callback it is aten::batch_norm.
at::Tensor redirected(const at::Tensor &input, const c10::optional<at::Tensor> &weight,
                      const c10::optional<at::Tensor> &bias, const c10::optional<at::Tensor> &running_mean,
                      const c10::optional<at::Tensor> &running_var, bool training, double momentum, double eps,
                      bool cudnn_enabled, int64_t model, int64_t layer, const c10::optional<at::Tensor> &slope) {
    ct_batch_norm_callback callback = batch_norm_callback.load();
    if (!callback) {
        at::Tensor y =
            at::batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled);
        return slope ? at::prelu(y, *slope) : y;
    }
    ct_tensor out = nullptr;
    ct_status status = callback(model, layer, ctorch::wrap(input), slope ? ctorch::wrap(*slope) : nullptr, &out);
    return callback_result(status, out, "the BatchNorm callback");
}

at::Tensor redirected_batch_norm_only(const at::Tensor &input, const c10::optional<at::Tensor> &weight,
                                     const c10::optional<at::Tensor> &bias,
                                     const c10::optional<at::Tensor> &running_mean,
                                     const c10::optional<at::Tensor> &running_var, bool training, double momentum,
                                     double eps, bool cudnn_enabled, int64_t model, int64_t layer) {
    return redirected(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled, model,
                      layer, c10::nullopt);
}

/// `segttt::batch_norm_prelu`: the same, followed by PReLU with `slope`, in one call, so the
/// host can run its fused kernel.
at::Tensor redirected_batch_norm_prelu(const at::Tensor &input, const c10::optional<at::Tensor> &weight,
                                       const c10::optional<at::Tensor> &bias,
                                       const c10::optional<at::Tensor> &running_mean,
                                       const c10::optional<at::Tensor> &running_var, bool training, double momentum,
                                       double eps, bool cudnn_enabled, int64_t model, int64_t layer,
                                       const at::Tensor &slope) {
    return redirected(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled, model,
                      layer, slope);
}

/// `segttt::convolution`: a 2-d convolution (or transposed convolution) by the host's
/// `conv2d` / `convTranspose2d`, which take SegTTT's kernels where they are faster; without
/// a callback, or for shapes other than 2-d, libtorch's.
at::Tensor redirected_convolution(const at::Tensor &input, const at::Tensor &weight, const c10::optional<at::Tensor> &bias,
                                  at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                                  bool transposed, at::IntArrayRef output_padding, int64_t groups) {
    ct_convolution_callback callback = convolution_callback.load();
    bool planar = input.dim() == 4 && stride.size() == 2 && padding.size() == 2 && dilation.size() == 2 &&
                  output_padding.size() == 2;
    if (!callback || !planar) {
        return at::convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups);
    }
    int64_t params[9] = {stride[0],   stride[1],   padding[0],        padding[1],        dilation[0],
                         dilation[1], groups,      output_padding[0], output_padding[1]};
    ct_tensor out = nullptr;
    ct_tensor b = bias && bias->defined() ? ctorch::wrap(*bias) : nullptr;
    ct_status status = callback(transposed, ctorch::wrap(input), ctorch::wrap(weight), b, params, &out);
    return callback_result(status, out, "the convolution callback");
}

TORCH_LIBRARY(segttt, m) {
    m.def(
        "batch_norm(Tensor input, Tensor? weight, Tensor? bias, Tensor? running_mean, Tensor? running_var, "
        "bool training, float momentum, float eps, bool cudnn_enabled, int model, int layer) -> Tensor");
    m.impl("batch_norm", c10::DispatchKey::CompositeImplicitAutograd, TORCH_FN(redirected_batch_norm_only));
    m.def(
        "batch_norm_prelu(Tensor input, Tensor? weight, Tensor? bias, Tensor? running_mean, Tensor? running_var, "
        "bool training, float momentum, float eps, bool cudnn_enabled, int model, int layer, Tensor slope) -> Tensor");
    m.impl("batch_norm_prelu", c10::DispatchKey::CompositeImplicitAutograd, TORCH_FN(redirected_batch_norm_prelu));
    m.def(
        "convolution(Tensor input, Tensor weight, Tensor? bias, int[] stride, int[] padding, int[] dilation, "
        "bool transposed, int[] output_padding, int groups) -> Tensor");
    m.impl("convolution", c10::DispatchKey::CompositeImplicitAutograd, TORCH_FN(redirected_convolution));
}

const c10::Symbol redirected_conv = c10::Symbol::fromQualString("segttt::convolution");

/// Replaces the 2-d convolutions of a graph by `segttt::convolution`: aten::conv2d (scripted
/// code, integer padding), aten::conv_transpose2d, and aten::_convolution (what a trace
/// records) whose `transposed` flag is a constant. Returns how many it replaced.
int64_t redirect_convolutions(torch::jit::Block *block) {
    int64_t count = 0;
    for (auto it = block->nodes().begin(); it != block->nodes().end();) {
        torch::jit::Node *node = *it;
        ++it;
        for (torch::jit::Block *inner : node->blocks()) count += redirect_convolutions(inner);
        torch::jit::Graph *graph = node->owningGraph();
        torch::jit::WithInsertPoint guard(node);
        std::vector<torch::jit::Value *> in(node->inputs().begin(), node->inputs().end());
        std::vector<torch::jit::Value *> args;
        auto int_list = [](torch::jit::Value *v) { return v->type()->kind() == c10::TypeKind::ListType; };
        if (node->kind() == c10::aten::conv2d && in.size() == 7 && int_list(in[4])) {
            // (input, weight, bias, stride, padding, dilation, groups)
            args = {in[0], in[1], in[2], in[3], in[4], in[5], graph->insertConstant(false),
                    graph->insertConstant(std::vector<int64_t>{0, 0}), in[6]};
        } else if (node->kind() == c10::aten::conv_transpose2d && in.size() == 8) {
            // (input, weight, bias, stride, padding, output_padding, groups, dilation)
            args = {in[0], in[1], in[2], in[3], in[4], in[7], graph->insertConstant(true), in[5], in[6]};
        } else if (node->kind() == c10::aten::_convolution && in.size() == 13 && torch::jit::toIValue(in[6])) {
            // (input, weight, bias, stride, padding, dilation, transposed, output_padding, groups, ...)
            args = {in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], in[8]};
        } else {
            continue;
        }
        torch::jit::Node *call = graph->insertNode(graph->create(redirected_conv, args, 1));
        call->output()->setType(node->output()->type());
        call->output()->copyMetadata(node->output());
        node->output()->replaceAllUsesWith(call->output());
        node->destroy();
        ++count;
    }
    return count;
}

/// The dotted attribute path from the graph's `self` to `v` ("encoder.bn.running_mean"), or
/// "" when `v` is not read from the module's attributes.
std::string attribute_path(torch::jit::Value *v, torch::jit::Value *self) {
    std::vector<std::string> names;
    while (v->node()->kind() == c10::prim::GetAttr) {
        names.push_back(v->node()->s(c10::attr::name));
        v = v->node()->input(0);
    }
    if (v != self || names.empty()) return "";
    std::string path;
    for (auto it = names.rbegin(); it != names.rend(); ++it) path += (path.empty() ? "" : ".") + *it;
    return path;
}

c10::optional<double> constant_double(torch::jit::Value *v) {
    auto value = torch::jit::toIValue(v);
    if (!value || !(value->isDouble() || value->isInt())) return c10::nullopt;
    return value->isDouble() ? value->toDouble() : static_cast<double>(value->toInt());
}

/// Whether `v` is None, or the parameter `name` of the submodule at `layer` read from `self`:
/// the affine tensors the host's layer owns.
bool is_layer_parameter(torch::jit::Value *v, torch::jit::Value *self, const torch::jit::Module &root,
                        const std::string &layer, const std::string &name) {
    if (v->type()->kind() == c10::TypeKind::NoneType) return true;
    if (attribute_path(v, self) != layer + "." + name) return false;
    c10::IValue module = root._ivalue();
    size_t start = 0;
    while (start <= layer.size()) {
        size_t dot = layer.find('.', start);
        std::string part = layer.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        if (!module.isObject() || !module.toObjectRef().type()->hasAttribute(part)) return false;
        module = module.toObjectRef().getAttr(part);
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
    if (!module.isObject()) return false;
    auto type = module.toObjectRef().type();
    auto slot = type->findAttributeSlot(name);
    return slot && type->is_parameter(*slot);
}

struct Redirection {
    std::vector<std::string> layers;  // module paths, in order of first call
    std::vector<std::pair<double, double>> constants;  // eps, momentum
    int64_t kept = 0;  // batch_norm calls left to libtorch
};

void redirect_block(torch::jit::Block *block, torch::jit::Value *self, const torch::jit::Module &root, int64_t model,
                    Redirection &r) {
    for (auto it = block->nodes().begin(); it != block->nodes().end();) {
        torch::jit::Node *node = *it;
        ++it;
        for (torch::jit::Block *inner : node->blocks()) redirect_block(inner, self, root, model, r);
        if (node->kind() != c10::aten::batch_norm || node->inputs().size() != 9) continue;
        std::string mean_path = attribute_path(node->input(3), self);
        std::string var_path = attribute_path(node->input(4), self);
        const std::string suffix = ".running_mean";
        auto eps = constant_double(node->input(7));
        auto momentum = constant_double(node->input(6));
        bool resolvable = mean_path.size() > suffix.size() &&
                          mean_path.compare(mean_path.size() - suffix.size(), suffix.size(), suffix) == 0 &&
                          var_path == mean_path.substr(0, mean_path.size() - suffix.size()) + ".running_var" &&
                          eps && momentum;
        std::string layer_path = resolvable ? mean_path.substr(0, mean_path.size() - suffix.size()) : "";
        // The host's layer normalises with its own weight and bias: only calls that pass
        // exactly those (or none) are its calls.
        resolvable = resolvable && is_layer_parameter(node->input(1), self, root, layer_path, "weight") &&
                     is_layer_parameter(node->input(2), self, root, layer_path, "bias");
        if (!resolvable) {
            ++r.kept;
            continue;
        }
        auto found = std::find(r.layers.begin(), r.layers.end(), layer_path);
        int64_t layer = found - r.layers.begin();
        if (found == r.layers.end()) {
            r.layers.push_back(layer_path);
            r.constants.emplace_back(*eps, *momentum);
        }
        torch::jit::Graph *graph = node->owningGraph();
        torch::jit::WithInsertPoint guard(node);
        std::vector<torch::jit::Value *> inputs(node->inputs().begin(), node->inputs().end());
        inputs.push_back(graph->insertConstant(model));
        inputs.push_back(graph->insertConstant(layer));
        torch::jit::Node *call = graph->insertNode(graph->create(redirected_batch_norm, inputs, 1));
        call->output()->setType(node->output()->type());
        call->output()->copyMetadata(node->output());
        node->output()->replaceAllUsesWith(call->output());
        node->destroy();
    }
}

const c10::Symbol redirected_batch_norm_prelu_symbol = c10::Symbol::fromQualString("segttt::batch_norm_prelu");

/// Merges `aten::prelu(segttt::batch_norm(...), slope)`, where the PReLU is the only use of
/// the normalised tensor, into one `segttt::batch_norm_prelu` call.
void fuse_prelu(torch::jit::Block *block) {
    for (auto it = block->nodes().begin(); it != block->nodes().end();) {
        torch::jit::Node *node = *it;
        ++it;
        for (torch::jit::Block *inner : node->blocks()) fuse_prelu(inner);
        if (node->kind() != c10::aten::prelu || node->inputs().size() != 2) continue;
        torch::jit::Node *bn = node->input(0)->node();
        if (bn->kind() != redirected_batch_norm || bn->output()->uses().size() != 1 || bn->owningBlock() != block)
            continue;
        torch::jit::Graph *graph = node->owningGraph();
        torch::jit::WithInsertPoint guard(node);
        std::vector<torch::jit::Value *> inputs(bn->inputs().begin(), bn->inputs().end());
        inputs.push_back(node->input(1));
        torch::jit::Node *call = graph->insertNode(graph->create(redirected_batch_norm_prelu_symbol, inputs, 1));
        call->output()->setType(node->output()->type());
        call->output()->copyMetadata(node->output());
        node->output()->replaceAllUsesWith(call->output());
        node->destroy();
        bn->destroy();
    }
}

/// Removes the scripted BatchNorm code's own `num_batches_tracked.add_(1)` of the redirected
/// layers: the host's layer counts the batches it normalises in training mode.
void drop_batch_counts(torch::jit::Block *block, torch::jit::Value *self, const Redirection &r) {
    for (auto it = block->nodes().begin(); it != block->nodes().end();) {
        torch::jit::Node *node = *it;
        ++it;
        for (torch::jit::Block *inner : node->blocks()) drop_batch_counts(inner, self, r);
        if (node->kind() != c10::aten::add_) continue;
        std::string path = attribute_path(node->input(0), self);
        const std::string suffix = ".num_batches_tracked";
        if (path.size() <= suffix.size() || path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0)
            continue;
        std::string layer = path.substr(0, path.size() - suffix.size());
        if (std::find(r.layers.begin(), r.layers.end(), layer) == r.layers.end()) continue;
        node->output()->replaceAllUsesWith(node->input(0));
        node->destroy();
    }
}

/// Checks the file format version a TorchScript archive declares against what this libtorch
/// reads, so that a file from a newer PyTorch gets a message naming both.
void check_file_version(const std::string &path) {
    std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
    try {
        reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
    } catch (const c10::Error &e) {
        // The reader refuses a newer file format in its constructor, in a sentence that names
        // the file's version and the highest one it reads.
        std::string what = e.what_without_backtrace();
        what = what.substr(0, what.find('\n'));
        TORCH_CHECK(what.find("maximum supported version") == std::string::npos, path,
                    ": saved by a newer PyTorch than this libtorch (", TORCH_VERSION, ") reads (", what,
                    "). Export the model again with PyTorch ", TORCH_VERSION_MAJOR, ".", TORCH_VERSION_MINOR,
                    " (torch.jit.save), or build SegTTT against a libtorch as new as the exporter's (LIBTORCH=...)");
        TORCH_CHECK(false, path,
                    " is not a TorchScript file (not a readable zip archive); save the model with "
                    "torch.jit.save(torch.jit.script(model), path) or torch.jit.trace");
    }
    TORCH_CHECK(reader->hasRecord("data.pkl") && reader->hasRecord("constants.pkl"), path,
                " is a zip archive but not a TorchScript module (no data.pkl and constants.pkl); save the model "
                "with torch.jit.save(torch.jit.script(model), path) or torch.jit.trace");
}

std::string describe(const c10::IValue &value) {
    std::ostringstream s;
    if (value.isTensor()) {
        s << "tensor " << value.toTensor().sizes();
    } else if (value.isTuple() || value.isList()) {
        auto elements = value.isTuple() ? value.toTupleRef().elements().vec() : value.toListRef().vec();
        s << (value.isTuple() ? "tuple" : "list") << " of " << elements.size() << " (";
        for (size_t i = 0; i < elements.size(); ++i) s << (i ? ", " : "") << i << ": " << describe(elements[i]);
        s << ")";
    } else if (value.isGenericDict()) {
        s << "dict (";
        bool first = true;
        for (const auto &entry : value.toGenericDict()) {
            s << (first ? "" : ", ") << entry.key() << ": " << describe(entry.value());
            first = false;
        }
        s << ")";
    } else {
        s << value.tagKind();
    }
    return s.str();
}

c10::IValue run_forward(ct_script_module m, ct_tensor input) {
    // The interpreter runs the graph op by op, as eager PyTorch would: no profiling runs, no
    // fusion, and autograd records the same operators. The setting (per thread) is also read
    // when code is compiled (a later load would keep more of its computations unfolded), so
    // it is set for the forward pass only.
    torch::jit::GraphOptimizerEnabledGuard unoptimized(false);
    return m->module.forward({input->tensor});
}

}  // namespace

extern "C" {

int64_t ct_live_script_modules(void) { return live_script_modules.load(); }

void ct_set_batch_norm_callback(ct_batch_norm_callback callback) { batch_norm_callback.store(callback); }

void ct_set_convolution_callback(ct_convolution_callback callback) { convolution_callback.store(callback); }

ct_status ct_script_module_redirect_convolutions(ct_script_module m, int64_t *count) {
    CT_PROTECT({
        auto graph = m->module.get_method("forward").graph();
        torch::jit::Inline(*graph);
        *count = redirect_convolutions(graph->block());
    })
}

void ct_set_last_error(const char *message) { ctorch::set_error(message ? message : ""); }

ct_status ct_script_module_load(const char *path, ct_script_module *out) {
    CT_PROTECT({
        check_file_version(path);
        torch::jit::Module module;
        try {
            module = torch::jit::load(path, at::Device(at::kCPU));
        } catch (const std::exception &e) {
            // An unknown operator comes as torch::jit::ErrorReport, which is no c10::Error.
            auto *error = dynamic_cast<const c10::Error *>(&e);
            std::string what = error ? error->what_without_backtrace() : e.what();
            what.erase(0, what.find_first_not_of(" \n"));
            bool unknown = what.find("Unknown builtin op") != std::string::npos ||
                           what.find("Unknown type name") != std::string::npos ||
                           what.find("schema") != std::string::npos;
            TORCH_CHECK(!unknown, path, ": this libtorch (", TORCH_VERSION,
                        ") does not know an operator or type the file uses, as when it was saved by a newer "
                        "PyTorch; export it again with PyTorch ",
                        TORCH_VERSION_MAJOR, ".", TORCH_VERSION_MINOR,
                        " or build SegTTT against the exporter's libtorch (LIBTORCH=...). libtorch said: ",
                        what.substr(0, what.find('\n')));
            throw;
        }
        TORCH_CHECK(module.find_method("forward"), path, " has no forward method");
        live_script_modules.fetch_add(1);
        *out = new ct_script_module_s{std::move(module)};
    })
}

void ct_script_module_free(ct_script_module m) {
    if (!m) return;
    live_script_modules.fetch_sub(1);
    delete m;
}

ct_status ct_script_module_submodules(ct_script_module m, char **out) {
    CT_PROTECT({
        std::string lines;
        for (const auto &entry : m->module.named_modules()) {
            std::string type = entry.value.type()->name() ? entry.value.type()->name()->qualifiedName() : "";
            lines += entry.name + "\t" + type + "\n";
        }
        *out = copy_string(lines);
    })
}

ct_status ct_script_module_tensors(ct_script_module m, bool buffers, char **names, ct_tensor *tensors, int capacity,
                                   int *count) {
    CT_PROTECT({
        std::vector<std::pair<std::string, at::Tensor>> entries;
        if (buffers) {
            for (const auto &e : m->module.named_buffers(true)) entries.emplace_back(e.name, e.value);
        } else {
            for (const auto &e : m->module.named_parameters(true)) entries.emplace_back(e.name, e.value);
        }
        *count = static_cast<int>(entries.size());
        if (!tensors || capacity < *count) {
            *names = nullptr;
            return CT_OK;
        }
        std::string lines;
        for (size_t i = 0; i < entries.size(); ++i) {
            lines += entries[i].first + "\n";
            tensors[i] = ctorch::wrap(entries[i].second);
        }
        *names = copy_string(lines);
    })
}

ct_status ct_script_module_train(ct_script_module m, bool on) { CT_PROTECT(m->module.train(on)) }

ct_status ct_script_module_to(ct_script_module m, int device_type, int device_index) {
    CT_PROTECT(m->module.to(ctorch::device(device_type, device_index)))
}

ct_status ct_script_module_forward(ct_script_module m, ct_tensor input, const char *key, int64_t index,
                                   ct_tensor *out) {
    CT_PROTECT({
        c10::IValue value = run_forward(m, input);
        if (key) {
            TORCH_CHECK(value.isGenericDict(), "the forward pass returned ", describe(value), ", not a dict with key '",
                        key, "'");
            auto dict = value.toGenericDict();
            auto found = dict.find(c10::IValue(std::string(key)));
            TORCH_CHECK(found != dict.end(), "the forward pass returned ", describe(value), ", without key '", key,
                        "'");
            value = found->value();
        } else if (index >= 0) {
            TORCH_CHECK(value.isTuple() || value.isList(), "the forward pass returned ", describe(value),
                        ", not a tuple or list to take element ", index, " of");
            auto elements = value.isTuple() ? value.toTupleRef().elements().vec() : value.toListRef().vec();
            TORCH_CHECK(index < static_cast<int64_t>(elements.size()), "the forward pass returned ", describe(value),
                        ", which has no element ", index);
            value = elements[index];
        }
        TORCH_CHECK(value.isTensor(), "the forward pass returned ", describe(value),
                    " where the logits should be; name the element that holds them");
        *out = ctorch::wrap(value.toTensor());
    })
}

ct_status ct_script_module_describe_output(ct_script_module m, ct_tensor input, char **out) {
    CT_PROTECT(*out = copy_string(describe(run_forward(m, input))))
}

ct_status ct_script_module_schema(ct_script_module m, char **out) {
    CT_PROTECT({
        std::ostringstream s;
        s << m->module.get_method("forward").function().getSchema();
        *out = copy_string(s.str());
    })
}

ct_status ct_script_module_graph_summary(ct_script_module m, int64_t *nodes, int64_t *batch_norms,
                                         bool *reads_training, bool *control_flow) {
    CT_PROTECT({
        auto graph = m->module.get_method("forward").graph()->copy();
        torch::jit::Inline(*graph);
        *nodes = *batch_norms = 0;
        *reads_training = *control_flow = false;
        std::function<void(torch::jit::Block *)> visit = [&](torch::jit::Block *block) {
            for (torch::jit::Node *node : block->nodes()) {
                ++*nodes;
                if (node->kind() == c10::aten::batch_norm || node->kind() == redirected_batch_norm ||
                    node->kind() == redirected_batch_norm_prelu_symbol)
                    ++*batch_norms;
                if (node->kind() == c10::prim::GetAttr && node->s(c10::attr::name) == "training")
                    *reads_training = true;
                if (node->kind() == c10::prim::If || node->kind() == c10::prim::Loop) *control_flow = true;
                for (torch::jit::Block *inner : node->blocks()) visit(inner);
            }
        };
        visit(graph->block());
    })
}

ct_status ct_script_module_redirect_batch_norm(ct_script_module m, int64_t model, char **layers, int64_t *kept) {
    CT_PROTECT({
        auto graph = m->module.get_method("forward").graph();
        torch::jit::Inline(*graph);
        Redirection r;
        redirect_block(graph->block(), graph->inputs().at(0), m->module, model, r);
        drop_batch_counts(graph->block(), graph->inputs().at(0), r);
        fuse_prelu(graph->block());
        std::ostringstream s;
        s.precision(17);
        for (size_t i = 0; i < r.layers.size(); ++i) {
            s << r.layers[i] << "\t" << r.constants[i].first << "\t" << r.constants[i].second << "\n";
        }
        *layers = copy_string(s.str());
        *kept = r.kept;
    })
}

}  // extern "C"
