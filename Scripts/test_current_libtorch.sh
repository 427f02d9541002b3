#!/usr/bin/env bash
# Builds SegTTT against the libtorch inside the current PyTorch wheel (CPU libraries only) and
# runs the tests there, in a build folder of its own (.build-torch2; the normal .build, on
# Debian's libtorch 1.13, is untouched). CI runs it after the main test run.
#
#     bash Scripts/test_current_libtorch.sh [swift test arguments...]
#
# Without arguments it runs every test but the two slowest suites, which only repeat on real
# data what the others check on fixtures: ReferenceAccuracyTests (the measured CamVid
# accuracies, minutes) and KilledRunTests (signals to whole tool runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/install_current_torch.sh cpu
site=$(.venv-torch/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export LIBTORCH=$site/torch LIBTORCH_CUDA=0
swift build --build-path .build-torch2 --build-tests
[ $# -gt 0 ] || set -- --skip ReferenceAccuracyTests --skip KilledRunTests
swift test --skip-build --build-path .build-torch2 "$@"
