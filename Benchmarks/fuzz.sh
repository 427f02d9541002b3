#!/usr/bin/env bash
# Fuzzes the readers of untrusted files with libFuzzer (docs/FUZZING.md): the safetensors,
# zip .pth and legacy pickle .pth checkpoint readers and the PNG and JPEG decoders. Not part
# of CI: it builds the package with coverage, AddressSanitizer and libFuzzer into its own
# build folder (.build-fuzz; the normal .build is untouched) and runs each reader for a
# bounded time.
#
#     bash Benchmarks/fuzz.sh [READER...]   (default: zip legacy-pickle png jpeg safetensors)
#
# Environment:
#   FUZZ_SECONDS=60     seconds of fuzzing per reader (libFuzzer's -max_total_time)
#   FUZZ_OUT=out/fuzz   where the seeds, the corpora (kept and grown between runs), the logs and
#                       the findings go
#   FUZZ_KEEP_GOING=1   keep fuzzing after a finding (libFuzzer's fork mode, one worker)
#                       instead of stopping at the first one
#   FUZZ_FLAGS="..."    more libFuzzer flags, e.g. -seed=1 or -max_len=4096
# Seeds are written at run time by Benchmarks/fuzz_seeds.py (PyTorch and PIL under
# /usr/bin/python3), taken from the test fixtures, and from ../shared/data/camvid when it is
# there. A finding (a trap, a crash, a hang over 10 s, more than 2 GiB resident, or one
# allocation over 2 GiB) is written to FUZZ_OUT/findings/READER/; replay one with
#     SEGTTT_FUZZ_TARGET=READER .build-fuzz/release/segttt-fuzz FILE
# and shrink it with -minimize_crash=1 -runs=10000 -exact_artifact_path=SMALLER.
set -euo pipefail
cd "$(dirname "$0")/.."
readers=("$@")
[ ${#readers[@]} -gt 0 ] || readers=(zip legacy-pickle png jpeg safetensors)
seconds=${FUZZ_SECONDS:-60}
out=${FUZZ_OUT:-out/fuzz}
python=${PYTHON:-/usr/bin/python3}

mkdir -p "$out"
# `--sanitize fuzzer` makes SwiftPM link the executable without a main of its own. swiftc keeps
# only the last -sanitize= it is given (and SwiftPM's `--sanitize fuzzer --sanitize address`
# passes two, in no fixed order), so the Swift code gets both sanitizers in one flag after it.
build=(swift build -c release -j 2 --build-path .build-fuzz --product segttt-fuzz --sanitize fuzzer
  -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=address)
echo "building: SEGTTT_FUZZ=1 ${build[*]}"
SEGTTT_FUZZ=1 "${build[@]}" >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
bin=$(SEGTTT_FUZZ=1 "${build[@]}" --show-bin-path)/segttt-fuzz

rm -rf "$out/seeds"
mkdir -p "$out/seeds"
"$python" Benchmarks/fuzz_seeds.py "$out/seeds"
fixtures() { # FOLDER PATTERN READER: copies the test fixtures under 64 KiB as seeds
  find "$1" -maxdepth 1 -name "$2" -size -64k -exec cp {} "$out/seeds/$3/" \;
}
fixtures Tests/TorchNNTests/Fixtures '*.safetensors' safetensors
fixtures Tests/SegTTTTests/Fixtures '*.safetensors' safetensors
for f in Tests/TorchNNTests/Fixtures/*.pth Tests/TorchNNTests/Fixtures/*.zip Tests/SegTTTTests/Fixtures/*.pt*; do
  [ "$(stat -c %s "$f")" -lt 65536 ] || continue
  if [ "$(head -c 4 "$f" | od -An -tx1 | tr -d ' ')" = 504b0304 ]; then
    cp "$f" "$out/seeds/zip/"
  else
    cp "$f" "$out/seeds/legacy-pickle/"
  fi
done
fixtures Tests/SegTTTTests/Fixtures/ImageIO '*.png' png
fixtures Tests/SegTTTTests/Fixtures/ImageIO '*.jpg' jpeg
camvid=../shared/data/camvid
if [ -d "$camvid" ]; then
  find "$camvid/test" "$camvid/testannot" -maxdepth 1 -name '*.png' 2>/dev/null | sort | head -4 |
    xargs -r cp -t "$out/seeds/png/"
fi

flags=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -max_total_time="$seconds" -print_final_stats=1)
[ "${FUZZ_KEEP_GOING:-0}" = 1 ] && flags+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
# shellcheck disable=SC2206
flags+=(${FUZZ_FLAGS:-})
# Leaks are not findings: libtorch and the Swift runtime keep caches for the process's life.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
# A Swift trap is reported by libFuzzer's own handler; Swift's backtracer would hold the
# crashed process for minutes.
export SWIFT_BACKTRACE=enable=no
summary=()
for reader in "${readers[@]}"; do
  mkdir -p "$out/corpus/$reader" "$out/findings/$reader"
  echo "fuzzing $reader for $seconds s"
  start=$SECONDS
  SEGTTT_FUZZ_TARGET=$reader "$bin" "${flags[@]}" -artifact_prefix="$out/findings/$reader/" \
    "$out/corpus/$reader" "$out/seeds/$reader" >"$out/$reader.log" 2>&1 || true
  # Executions: libFuzzer's final statistics, or in fork mode the last progress line's count.
  runs=$(awk '/^stat::number_of_executed_units:/ {n = $2} /^#[0-9]+: cov:/ {sub(/^#/, "", $1); f = $1 + 0}
    END {print n ? n : f + 0}' "$out/$reader.log")
  time=$((SECONDS - start))
  found=$(find "$out/findings/$reader" -type f | wc -l)
  summary+=("$(printf '%-14s %10s executions %5s s %3s finding(s) in %s' "$reader" "$runs" "$time" "$found" \
    "$out/findings/$reader")")
  find "$out/findings/$reader" -type f -printf '  %p (%s bytes)\n'
done
printf '%s\n' "${summary[@]}"
