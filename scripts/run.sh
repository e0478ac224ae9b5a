#!/usr/bin/env bash
# Sets up the machine, builds neurontrace and runs the main job: a study with its report in
# out/<config name>/report.html. By default the Wikipedia concepts (war, music, plants, sport) on
# the small trained GPT-2 in ../shared/models/gpt2-wiki.
#   MODEL=path/or/name CONFIG=study.json scripts/run.sh   another model and/or study, e.g.
#   MODEL=gpt2 CONFIG=examples/seed-study.json scripts/run.sh   the notes' study on GPT-2 small
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target neurontrace >&2
model="${MODEL:-../shared/models/gpt2-wiki}"
config="${CONFIG:-examples/gpt2-wiki-study.json}"
out="out/$(basename "$config" .json)"
./build/neurontrace study "$config" --model "$model" --out "$out" "$@"
echo "report: $out/report.html" >&2
