#!/usr/bin/env bash
# Installs every Debian package neurontrace needs to build and test. Idempotent:
# skips what is installed and runs `apt-get update` only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libopenblas-dev
  nlohmann-json3-dev
  libcli11-dev
  libgtest-dev libgmock-dev
  libbenchmark-dev
  libpcre2-dev
  libfmt-dev
  libcairo2-dev
  libsentencepiece-dev
  libicu-dev
  libcurl4-openssl-dev
  libzip-dev
  zlib1g-dev
  clang libclang-rt-14-dev
  g++-aarch64-linux-gnu qemu-user
  chromium
  python3 python3-dev python3-numpy python3-venv python3-pytest pybind11-dev
  libopenmpi-dev openmpi-bin
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
