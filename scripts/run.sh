#!/usr/bin/env bash
# Sets up the machine, builds neurontrace and runs the main job: the seed study of the research
# notes (examples/seed-study.json) with its report in out/seed-study/report.html.
#   MODEL=path/or/name scripts/run.sh   runs it on another model (default: the tiny fixture GPT-2)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target neurontrace >&2
model="${MODEL:-../shared/fixtures/models/gpt2-tiny}"
./build/neurontrace study examples/seed-study.json --model "$model" --out out/seed-study "$@"
echo "report: out/seed-study/report.html" >&2
