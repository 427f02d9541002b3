#!/usr/bin/env bash
# Installs the current PyTorch from PyPI into a virtual environment (default .venv-torch), for
# building SegTTT against its libtorch and for the benchmarks' PyTorch 2 contenders.
#
#     bash Scripts/install_current_torch.sh [cpu|full]
#
#   cpu   (default) the torch wheel without its dependencies, plus the two CUDA libraries that
#         libtorch_cpu.so itself links (cudart, cupti): about 1.3 GB. Enough to build and test
#         the package with
#             LIBTORCH=.venv-torch/lib/python3.X/site-packages/torch LIBTORCH_CUDA=0
#         but not to `import torch`: the Python module links libtorch_cuda and every CUDA
#         library behind it.
#   full  the wheel with all its dependencies (cuDNN, cuBLAS, NCCL, triton, ...: about 5.4 GB),
#         which `import torch`, the benchmarks' PyTorch 2 contenders and torch.compile need.
#
# Environment: TORCH_VERSION (default 2.15.0), VENV (default .venv-torch), PYTHON (default
# python3; any CPython the wheel is built for).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-cpu}
version=${TORCH_VERSION:-2.15.0}
venv=${VENV:-.venv-torch}
python=${PYTHON:-python3}
case "$kind" in cpu | full) ;; *)
    echo "install_current_torch: give cpu or full, not '$kind'" >&2
    exit 64
    ;;
esac

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/pip" install --quiet --disable-pip-version-check)
if [ "$kind" = full ]; then
    "${pip[@]}" "torch==$version"
else
    "${pip[@]}" --no-deps "torch==$version"
    # The CUDA version the wheel was built for pins the two runtime libraries libtorch_cpu needs.
    toolkit=$("$venv/bin/python" - <<'EOF'
import importlib.metadata as m, re
for r in m.requires("torch") or []:
    found = re.match(r"cuda-toolkit\[.*\]==([0-9.]+)", r)
    if found:
        print(found.group(1))
EOF
    )
    [ -n "$toolkit" ] && "${pip[@]}" "cuda-toolkit[cudart,cupti]==$toolkit"
fi
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "install_current_torch: torch $version ($kind) in $venv; build with"
echo "    LIBTORCH=$site/torch LIBTORCH_CUDA=0 swift build"
