#!/usr/bin/env bash
# Installs what SegTTT needs on Debian bookworm (safe to run again: it installs only what
# is missing). libtorch comes from Debian's libtorch-dev unless LIBTORCH names another
# libtorch folder; python3-torch is PyTorch for the fixture scripts and the benchmarks, and
# python3-torchvision gives the TorchScript tests networks of other shapes.
set -euo pipefail

# libopenblas0 gives libtorch an optimised BLAS (Debian otherwise falls back to the
# reference one, several times slower for matrix products); zlib1g-dev checks zip entries' CRC-32.
packages=(libtorch-dev libdnnl-dev python3-torch python3-torchvision libopenblas0 libpng-dev libjpeg62-turbo-dev zlib1g-dev)
if [ -n "${LIBTORCH:-}" ]; then
    if [ ! -d "$LIBTORCH/include" ] || [ ! -d "$LIBTORCH/lib" ]; then
        echo "setup: LIBTORCH=$LIBTORCH has no include/ and lib/; point it at an unpacked libtorch" >&2
        exit 1
    fi
    packages=(python3-torch python3-torchvision libopenblas0 libpng-dev libjpeg62-turbo-dev zlib1g-dev)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
    echo "setup: no Swift toolchain on PATH; install Swift 5.10 or later from https://www.swift.org/install/linux/" >&2
    exit 1
fi
echo "setup: ready ($(swift --version 2>&1 | head -n 1))"
