#!/usr/bin/env bash
# Builds SegTTT against the libtorch inside the current PyTorch wheel (CPU libraries only) and
# runs the tests there, in a build folder of its own (.build-torch2; the normal .build, on
# Debian's libtorch 1.13, is untouched). CI runs it after the main test run.
#
#     bash Scripts/test_current_libtorch.sh [swift test arguments...]
#
# Without arguments it runs every test but the five slowest suites, which only repeat on real
# data, whole networks or whole tool runs what the others check, so that CI stays within its time:
# ReferenceAccuracyTests (the measured CamVid accuracies, minutes), KilledRunTests (signals to
# whole tool runs), TorchScriptESPNetTests and TorchvisionModelTests (whole scripted networks;
# TorchScriptModelTests adapts a file the current PyTorch scripted), SweepTests (whole sweeps).
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/install_current_torch.sh cpu
site=$(.venv-torch/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export LIBTORCH=$site/torch LIBTORCH_CUDA=0
swift build --build-path .build-torch2 --build-tests
[ $# -gt 0 ] || set -- --skip ReferenceAccuracyTests --skip KilledRunTests --skip TorchScriptESPNetTests \
    --skip TorchvisionModelTests --skip SweepTests
swift test --skip-build --build-path .build-torch2 "$@"
