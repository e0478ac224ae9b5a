#!/usr/bin/env bash
# `pip install .` from the checkout into a fresh virtual environment, offline (--no-index,
# --no-build-isolation: the venv's setuptools builds it; NumPy from the system site-packages),
# reusing the CMake build folder, then import the installed module and generate with it.
#   tests/python/pip_install.sh PYTHON BUILD_DIR MODEL_DIR
set -euo pipefail
python=$1 build=$(cd "$2" && pwd) model=$3
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
venv="$build/pip-venv"
rm -rf "$venv"
"$python" -m venv --system-site-packages "$venv"
NT_BUILD_DIR="$build" "$venv/bin/pip" install --quiet --no-index --no-build-isolation "$source_dir"
cd "$build"  # (not the checkout: import the installed package, not python/neurontrace)
"$venv/bin/python" - "$model" <<'PY'
import sys
import neurontrace
assert neurontrace.__file__.startswith(sys.prefix), neurontrace.__file__
m = neurontrace.load(sys.argv[1])
r = m.generate("Hello, my name is", max_new_tokens=3, stop_at_eos=False)
assert len(r[0]["generated_ids"]) == 3, r
print("installed", neurontrace.__file__)
PY
rm -rf "$venv"
