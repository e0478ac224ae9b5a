#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, AddressSanitizer + UndefinedBehaviorSanitizer) in
# build-fuzz/ and runs each of them, one after the other:
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   default 600 s per target
#   scripts/fuzz.sh --smoke                9 s per target from a fixed seed, about a minute (the FuzzSmoke test)
#   FUZZ_TARGETS="fuzz_tokenizer fuzz_safetensors" scripts/fuzz.sh 60   only these targets
# Seeds come from fuzz/corpus/<target>/ (read only); what the fuzzer finds interesting goes to
# build-fuzz/corpus/<target>/ (kept between runs; --smoke starts from the seeds alone) and crashing
# inputs to build-fuzz/artifacts/ (reproduce: build-fuzz/fuzz/<target> FILE). Exit status 1 when a
# target found a crash, a sanitizer report, a broken invariant, a leak or a hang (-timeout=10).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=600
smoke=0
seed=0  # libFuzzer picks one
case "${1:-}" in
  --smoke) secs=9; smoke=1; seed=1 ;;  # the same inputs in the same order every run, as far as 9 s reach
  "") ;;
  *[!0-9]* | 0) echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET | --smoke]" >&2; exit 2 ;;
  *) secs=$1 ;;
esac

if ! command -v clang++ >/dev/null; then
  echo "fuzz.sh: clang++ not found (scripts/setup.sh installs clang and libclang-rt-14-dev)" >&2
  exit 1
fi

build=build-fuzz
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -DNT_FUZZ=ON -DNT_SANITIZE=OFF >/dev/null
fi
cmake --build "$build" -j2 --target fuzz_all >/dev/null

targets=${FUZZ_TARGETS:-"fuzz_safetensors fuzz_model_config fuzz_tokenizer fuzz_study_config fuzz_intervention_spec fuzz_npz fuzz_sae_config fuzz_corpus_reader"}
mkdir -p "$build/artifacts" "$build/logs"
status=0
for t in $targets; do
  work="$build/corpus/$t"
  if [ $smoke = 1 ]; then  # bounded and repeatable: the seeds only, not what long runs collected
    work="$build/corpus-smoke/$t"
    rm -rf "$work"
  fi
  mkdir -p "$work"
  log="$build/logs/$t-${secs}s.log"
  set +e
  nice -n 10 "$build/fuzz/$t" -max_total_time="$secs" -seed="$seed" -timeout=10 -rss_limit_mb=2048 \
    -dict=fuzz/nt.dict -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" \
    "$work" "fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  set -e
  # A crashed target cannot remove its scratch folder (fuzz/fuzz_common.h): remove those whose
  # process is gone (another fuzz.sh may be running the same target).
  for d in /dev/shm/nt-fuzz-"${t#fuzz_}"-*; do
    [ -d "$d" ] && ! kill -0 "${d##*-}" 2>/dev/null && rm -rf "$d"
  done
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ -z "$execs" ]; then  # a crash ends the run before the final stats
    execs=$(grep -Eo '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  fi
  corpus=$(find "$work" -type f | wc -l)
  if [ $rc -eq 0 ]; then
    printf '%-24s %12s executions in %ss, corpus %s, no findings\n' "$t" "${execs:-0}" "$secs" "$corpus"
  else
    status=1
    printf '%-24s %12s executions, FAILED (exit %s); log: %s\n' "$t" "${execs:-0}" "$rc" "$log"
    grep -E 'ERROR: |SUMMARY: |runtime error|invariant violated|unexpected|Test unit written' "$log" | head -8 | sed 's/^/    /'
  fi
done
exit $status
