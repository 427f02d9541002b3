// libtorch's operator profiler (its legacy CPU one, which `torch.autograd.profiler` also
// drives) around a region of the calling thread, summarised by operator name.
#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <cstring>
#include <iomanip>
#include <map>
#include <sstream>
#include <vector>

#include "ctorch_internal.h"

namespace {

namespace profiler = torch::autograd::profiler;

/// One operator name's totals over a profiled region, in microseconds.
struct Totals {
    int64_t calls = 0;
    double total_us = 0;
    double self_us = 0;
};

/// The event's name, followed with `by_shapes` by its inputs' sizes ("[2,20,360,480]", "[]"
/// for an input that is not a tensor or has no dimensions), the trailing "[]" left out.
std::string key(const profiler::LegacyEvent &event, bool by_shapes) {
    std::string key = event.name();
    if (!by_shapes) return key;
    auto shapes = event.shapes();
    while (!shapes.empty() && shapes.back().empty()) shapes.pop_back();
    for (const auto &sizes : shapes) {
        key += " [";
        for (size_t i = 0; i < sizes.size(); ++i) key += (i ? "," : "") + std::to_string(sizes[i]);
        key += "]";
    }
    return key;
}

/// Pairs each push event with the pop of the same handle and sums per key: total = pop -
/// push, self = total minus the totals of the ranges directly inside it on its thread. Each
/// thread's list holds its pushes in order; a range popped on another thread is filed with
/// its push, out of nesting order, and counts with its total only, inside no other range.
std::map<std::string, Totals> summarize(const profiler::thread_event_lists &threads, bool by_shapes) {
    std::map<std::string, Totals> by_name;
    for (const auto &events : threads) {
        struct Open {
            const profiler::LegacyEvent *push;
            double children_us;
        };
        std::vector<Open> stack;
        for (const auto &event : events) {
            if (event.kind() == profiler::EventKind::PushRange) {
                stack.push_back({&event, 0});
                continue;
            }
            if (event.kind() != profiler::EventKind::PopRange) continue;
            const auto open = std::find_if(stack.rbegin(), stack.rend(), [&](const Open &candidate) {
                return candidate.push->handle() == event.handle();
            });
            if (open == stack.rend()) continue;
            const bool nested = open == stack.rbegin();
            const double elapsed = open->push->cpuElapsedUs(event);
            Totals &totals = by_name[key(*open->push, by_shapes)];
            totals.calls += 1;
            totals.total_us += elapsed;
            totals.self_us += elapsed - open->children_us;
            stack.erase(std::next(open).base());
            if (nested && !stack.empty()) stack.back().children_us += elapsed;
        }
    }
    return by_name;
}

/// Whether this thread's running profile records its operators' input sizes.
thread_local bool recording_shapes = false;

}  // namespace

extern "C" {

ct_status ct_profiler_start(bool record_shapes) {
    CT_PROTECT({
        profiler::enableProfilerLegacy(
            torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU, record_shapes));
        recording_shapes = record_shapes;
    })
}

ct_status ct_profiler_stop(char **out) {
    CT_PROTECT({
        const auto by_name = summarize(profiler::disableProfilerLegacy(), recording_shapes);
        std::vector<std::pair<std::string, Totals>> rows(by_name.begin(), by_name.end());
        std::sort(rows.begin(), rows.end(),
                  [](const auto &a, const auto &b) { return a.second.self_us > b.second.self_us; });
        std::ostringstream text;
        text << std::setprecision(17);
        for (const auto &[name, totals] : rows) {
            text << name << '\t' << totals.calls << '\t' << totals.total_us << '\t' << totals.self_us << '\n';
        }
        *out = strdup(text.str().c_str());
    })
}

}  // extern "C"
