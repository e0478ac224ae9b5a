#!/usr/bin/env bash
# Cross-builds the model, tokenizer and kernel code for aarch64 (Debian's g++-aarch64-linux-gnu)
# and runs their tests under qemu-aarch64, in build-aarch64/. Run before each release:
#   scripts/cross-aarch64.sh
# The arm64 libraries the build links are downloaded as Debian packages (apt-get download, with the
# arm64 architecture added to dpkg) and unpacked into build-aarch64/arm64-root, not installed: a
# multiarch install would have to move the host's own packages to the same versions.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

build=build-aarch64
root=$PWD/$build/arm64-root
# The library's dependencies without cairo (NT_MODEL_ONLY leaves out reports and studies), and
# what they need at run time beyond libc and libstdc++ (which the cross compiler brings).
packages=(
  nlohmann-json3-dev libfmt-dev libfmt9 libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3
  libsentencepiece-dev libsentencepiece0 libicu-dev libicu72 libgtest-dev
  libcurl4-openssl-dev libcurl4 libbrotli1 libcom-err2 libffi8 libgmp10 libgnutls30 libgssapi-krb5-2
  libhogweed6 libidn2-0 libk5crypto3 libkeyutils1 libkrb5-3 libkrb5support0 libldap-2.5-0 libnettle8
  libnghttp2-14 libp11-kit0 libpsl5 librtmp1 libsasl2-2 libssh2-1 libssl3 libtasn1-6 libunistring2
  libzstd1 zlib1g libdb5.3
)
if [ ! -f "$root/.complete" ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $SUDO dpkg --add-architecture arm64
    $SUDO apt-get update -qq
  fi
  rm -rf "$root" "$build/debs"
  mkdir -p "$root" "$build/debs"
  arm64=()
  for p in "${packages[@]}"; do
    case "$p" in nlohmann-json3-dev) arm64+=("$p") ;; *) arm64+=("$p:arm64") ;; esac
  done
  (cd "$build/debs" && apt-get download -qq "${arm64[@]}")
  for deb in "$build"/debs/*.deb; do dpkg-deb -x "$deb" "$root"; done
  touch "$root/.complete"
fi

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
  -DNT_ARM64_ROOT="$root" -DNT_MODEL_ONLY=ON -DNT_FUZZ_SMOKE=OFF >/dev/null
cmake --build "$build" -j2
ctest --test-dir "$build" --output-on-failure -j2
