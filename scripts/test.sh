#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test:
#   0. the Linux test kernel (tests/linux/build_kernel.sh: built once, then cached
#      under ~/.cache/reel/linux; REEL_SKIP_LINUX_KERNEL=1 skips it, and the
#      Linux ctests then skip themselves),
#   1. the optimised build and its whole ctest suite,
#   2. the same suite under AddressSanitizer + UndefinedBehaviorSanitizer,
#   3. each libFuzzer target for a short, bounded time (clang build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${REEL_BUILD_ROOT:-$root/build}
fuzz_seconds=${REEL_FUZZ_SECONDS:-15}

./scripts/setup.sh

summary=()
failed=0

if [ "${REEL_SKIP_LINUX_KERNEL:-0}" != 1 ]; then
  echo "== Linux test kernel"
  t0=$(date +%s)
  if ./tests/linux/build_kernel.sh > "${TMPDIR:-/tmp}/reel-kernel-build.log" 2>&1; then
    summary+=("linux kernel: $(tail -n 1 "${TMPDIR:-/tmp}/reel-kernel-build.log") ($(($(date +%s) - t0)) s)")
  else
    tail -40 "${TMPDIR:-/tmp}/reel-kernel-build.log"
    summary+=("linux kernel: build FAILED (the Linux ctests will skip)")
    failed=1
  fi
fi
run_suite() {  # name dir
  local name=$1 dir=$2
  echo "== ctest ($name)"
  if ctest --test-dir "$dir" -j 2 --output-on-failure --timeout 900; then
    summary+=("$name: ctest passed")
  else
    summary+=("$name: ctest FAILED")
    failed=1
  fi
}

echo "== build (release)"
./scripts/build.sh "$out/release" -DCMAKE_BUILD_TYPE=Release
run_suite release "$out/release"

echo "== build (asan+ubsan)"
./scripts/build.sh "$out/asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREEL_SANITIZE=ON -DREEL_BENCH=OFF
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite asan+ubsan "$out/asan"

echo "== build (fuzz)"
./scripts/build.sh "$out/fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DREEL_FUZZ=ON -DREEL_SANITIZE=ON -DREEL_BENCH=OFF -DREEL_WERROR=OFF
fuzz_pass=0
fuzz_fail=0
for fuzzer in "$out"/fuzz/tests/fuzz/*_fuzz; do
  [ -x "$fuzzer" ] || continue
  name=$(basename "$fuzzer")
  corpus="$out/fuzz/corpus/$name"
  mkdir -p "$corpus"
  [ -d "tests/fuzz/corpus/$name" ] && cp -n tests/fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null || true
  if "$fuzzer" -max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=4096 -artifact_prefix="$out/fuzz/$name-" \
      "$corpus" >"$out/fuzz/$name.log" 2>&1; then
    echo "fuzz $name: ok (${fuzz_seconds}s)"
    fuzz_pass=$((fuzz_pass + 1))
  else
    echo "fuzz $name: FAILED, log follows"
    tail -40 "$out/fuzz/$name.log"
    fuzz_fail=$((fuzz_fail + 1))
    failed=1
  fi
done
summary+=("fuzz: $fuzz_pass targets clean, $fuzz_fail failed")

echo "== summary"
printf '%s\n' "${summary[@]}"
exit $failed
