#!/usr/bin/env bash
# Sets up the machine, builds everything and runs the whole test suite (ctest).
#   scripts/test.sh                    Release build in build/ (-march=native)
#   scripts/test.sh --sanitize         AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/
#                                      (clang, -O1 -g1)
#   scripts/test.sh --arch x86-64-v3   Release build for that CPU level instead of this machine's, in
#                                      build-x86-64-v3/ (x86-64-v3: the AVX2 + FMA kernels, not the
#                                      AVX-512 ones), with the test programs whose code has an AVX2
#                                      path (kernels, token statistics, sampler) or whose numbers come
#                                      from the kernels; the other programs, FuzzSmoke and the Python
#                                      module exercise no kernel path these do not
# The benchmarks and tools/ are built only by the first (no test uses them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

build=build
flags=(-DCMAKE_BUILD_TYPE=Release)
case "${1:-}" in
  --sanitize)
    build=build-asan
    # clang at -O1 with line tables (-g1: file:line in every report): the same checks as gcc's
    # -O2 -g build, compiled ~5x faster (a 92 s test file takes 18 s), which is most of CI's time.
    export CC=clang CXX=clang++
    flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
           -DNT_SANITIZE=ON -DNT_BENCH=OFF)
    # Leaks in fontconfig's / cairo's process-wide caches are theirs (scripts/lsan.supp).
    export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    ;;
  --arch)
    arch="${2:?--arch needs a -march value, e.g. x86-64-v3}"
    build="build-$arch"
    kernel_tests="kernels|weight_formats|model_goldens|generation|cli_generate|llama_config|neox_gemma_config"
    kernel_tests+="|hook_sites|trace|steer|sae|sae_trace|sae_steer|atlas|long_run"
    flags=(-DCMAKE_BUILD_TYPE=Release -DNT_NATIVE=OFF "-DNT_ARCH=$arch" -DNT_FUZZ_SMOKE=OFF -DNT_PYTHON=OFF
           -DNT_BENCH=OFF "-DNT_TEST_PROGRAMS=$kernel_tests")
    ;;
  "") ;;
  *) echo "usage: scripts/test.sh [--sanitize | --arch ARCH]" >&2; exit 2 ;;
esac
cmake -S . -B "$build" "${flags[@]}" >/dev/null
cmake --build "$build" -j2
ctest --test-dir "$build" --output-on-failure -j2
