#!/bin/bash
# The cost of splitting a study (issue 16): the same study as one process, as 2 shards run one
# after the other and merged (`study --shard I/2` + `study merge`), both with 2 threads, and as
# `mpirun -np 2` with 1 thread per rank (the ranks share the 2 cores as the one process's threads
# do; rank 0 then merges with its one thread). Rounds alternate the three; each keeps its best
# round (interference on a shared machine only adds).
# Wall time and CPU time (user + system, every process of the run) are reported: on a busy machine
# the CPU time shows the split's own cost better.
#
#   bench/study_split.sh [BUILD_DIR] [CONFIG] [ROUNDS]
#
# Model: BUILD_DIR/bench-model/gpt2-small (GPT-2 small's shape; written by make_random_model
# --out DIR, or by the first nt_bench run). The outputs of the three are checked to be the same
# (the checkpoints in groups/ aside: their group sums of squares are accumulated in step order, so
# a split run may differ there in the last bits, ~1e-15 relative).
set -euo pipefail
build=${1:-build}
config=${2:-examples/seed-study.json}
rounds=${3:-3}
nt=$build/neurontrace
model=$build/bench-model/gpt2-small
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# "<wall> <cpu>" seconds of one command.
measure() { /usr/bin/time -f '%e %U %S' -o "$tmp/time" "$@" > /dev/null; awk '{print $1, $2 + $3}' "$tmp/time"; }
add() { awk -v a="$1" -v b="$2" 'BEGIN {split(a, x, " "); split(b, y, " "); print x[1] + y[1], x[2] + y[2]}'; }
best() { printf '%s\n' "$@" | awk 'NR == 1 || $1 < w {w = $1} NR == 1 || $2 < c {c = $2} END {print w, c}'; }
row() {
  awk -v name="$1" -v t="$2" -v ref="$3" -v note="$4" 'BEGIN {split(t, x, " "); split(ref, r, " ");
    printf "%-18s wall %6.2f s (%+5.1f%%)   cpu %6.2f s (%+5.1f%%)%s\n", name, x[1], (x[1] / r[1] - 1) * 100,
           x[2], (x[2] / r[2] - 1) * 100, note}'
}

one=() split=() merge_only=() mpi=()
for ((r = 0; r < rounds; r++)); do
  rm -rf "${tmp:?}"/*
  one+=("$(measure "$nt" --threads 2 study "$config" -m "$model" --out "$tmp/one" -q)")
  t=$(measure "$nt" --threads 2 study "$config" -m "$model" --shard 0/2 --out "$tmp/parts/part-0" -q)
  t=$(add "$t" "$(measure "$nt" --threads 2 study "$config" -m "$model" --shard 1/2 --out "$tmp/parts/part-1" -q)")
  m=$(measure "$nt" --threads 2 study merge "$tmp"/parts/part-* --out "$tmp/merged" -q)
  split+=("$(add "$t" "$m")")
  merge_only+=("$m")
  mpi+=("$(measure mpirun -np 2 --oversubscribe --allow-run-as-root "$nt" --threads 1 study "$config" -m "$model" --out "$tmp/mpi" -q)")
  diff -rq -x ranks -x groups "$tmp/one" "$tmp/merged" > /dev/null || { echo "merged outputs differ" >&2; exit 1; }
  diff -rq -x ranks -x groups "$tmp/one" "$tmp/mpi" > /dev/null || { echo "mpirun outputs differ" >&2; exit 1; }
done
b1=$(best "${one[@]}")
row "one process" "$b1" "$b1" ""
row "2 shards + merge" "$(best "${split[@]}")" "$b1" "   (the merge alone: $(best "${merge_only[@]}" | awk '{printf "wall %.2f s, cpu %.2f s", $1, $2}'))"
row "mpirun -np 2" "$(best "${mpi[@]}")" "$b1" ""
