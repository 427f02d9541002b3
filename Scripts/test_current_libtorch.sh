#!/usr/bin/env bash
# Builds SegTTT against the libtorch inside the current PyTorch wheel (CPU libraries only) and
# runs the tests there, in a build folder of its own (.build-torch2; the normal .build, on
# Debian's libtorch 1.13, is untouched). CI runs it after the main test run.
#
#     bash Scripts/test_current_libtorch.sh [swift test arguments...]
#
# Without arguments it runs every test, as the main run does (SlurmSweepTests skip themselves
# where no Slurm is running, as after .ci/run's main run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/install_current_torch.sh cpu
site=$(.venv-torch/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export LIBTORCH=$site/torch LIBTORCH_CUDA=0
swift build --build-path .build-torch2 --build-tests
swift test --skip-build --build-path .build-torch2 "$@"
