#!/usr/bin/env bash
# Sets up the machine, builds everything and runs the whole test suite (ctest).
#   scripts/test.sh                    Release build in build/ (-march=native)
#   scripts/test.sh --sanitize         AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/
#   scripts/test.sh --arch x86-64-v3   Release build for that CPU level instead of this machine's, in
#                                      build-x86-64-v3/ (x86-64-v3: the AVX2 + FMA kernels, not the
#                                      AVX-512 ones); FuzzSmoke and the Python module are left out (they
#                                      exercise no kernel path the C++ tests do not)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

build=build
flags=(-DCMAKE_BUILD_TYPE=Release)
case "${1:-}" in
  --sanitize)
    build=build-asan
    flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DNT_SANITIZE=ON)
    # Leaks in fontconfig's / cairo's process-wide caches are theirs (scripts/lsan.supp).
    export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    ;;
  --arch)
    arch="${2:?--arch needs a -march value, e.g. x86-64-v3}"
    build="build-$arch"
    flags=(-DCMAKE_BUILD_TYPE=Release -DNT_NATIVE=OFF "-DNT_ARCH=$arch" -DNT_FUZZ_SMOKE=OFF -DNT_PYTHON=OFF)
    ;;
  "") ;;
  *) echo "usage: scripts/test.sh [--sanitize | --arch ARCH]" >&2; exit 2 ;;
esac
cmake -S . -B "$build" "${flags[@]}" >/dev/null
cmake --build "$build" -j2
ctest --test-dir "$build" --output-on-failure -j2
