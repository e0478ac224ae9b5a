#!/usr/bin/env python3
"""The Python module's costs on the GPT-2-small-shaped bench model (tools/make_random_model writes
it to build/bench-model/gpt2-small, as nt_bench does):

1. the seed study (examples/seed-study.json) run by `neurontrace study` and by neurontrace.study()
   from a fresh python3, alternately, each end to end (process start and model load included);
2. a Python observer hook on one site (blocks.6.mlp.hook_post) during generation at batch 16:
   the CPU time it adds per forward step. One call costs microseconds against a step of tens of
   milliseconds, below the noise of a shared machine, so the hooked run registers --copies
   observers on the site and the cost of one is the difference divided by their number.

    PYTHONPATH=build/python python3 bench/python_bench.py [--repeats 3] [--threads 2]
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--build", default=os.path.join(ROOT, "build"))
parser.add_argument("--config", default=os.path.join(ROOT, "examples", "seed-study.json"))
parser.add_argument("--repeats", type=int, default=3)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--tokens", type=int, default=64, help="new tokens per sequence in the hook run")
parser.add_argument("--copies", type=int, default=50, help="observers on the site in the hooked run")
args = parser.parse_args()

model = os.path.join(args.build, "bench-model", "gpt2-small")
subprocess.run([os.path.join(args.build, "make_random_model"), "--out", model], check=True)
cli = os.path.join(args.build, "neurontrace")
python_study = ("import sys, neurontrace; "
                "neurontrace._core.set_threads(int(sys.argv[4])); "
                "neurontrace.study(sys.argv[1], out=sys.argv[2], model=sys.argv[3])")


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command):
    """(wall seconds, CPU seconds of the process and its threads): on a shared machine the CPU
    time is the steadier figure."""
    start, cpu = time.perf_counter(), children_cpu()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start, children_cpu() - cpu


work = tempfile.mkdtemp(prefix="nt-python-bench-")
times = {"cli": [], "python": []}
for r in range(args.repeats):
    for kind in ("cli", "python"):
        out = os.path.join(work, f"{kind}-{r}")
        if kind == "cli":
            command = [cli, "--threads", str(args.threads), "study", args.config, "--model", model, "--out", out, "-q"]
        else:
            command = [sys.executable, "-c", python_study, args.config, out, model, str(args.threads)]
        times[kind].append(timed(command))
        shutil.rmtree(out)
shutil.rmtree(work)
for i, what in enumerate(("wall", "CPU")):
    t = {kind: [run[i] for run in runs] for kind, runs in times.items()}
    for kind, values in t.items():
        print(f"seed study, {kind:6} {what:4}: min {min(values):.2f} s, median {statistics.median(values):.2f} s"
              f"  ({', '.join(f'{x:.2f}' for x in values)})")
    print(f"python overhead, {what}: {min(t['python']) / min(t['cli']) - 1:+.1%} (min), "
          f"{statistics.median(t['python']) / statistics.median(t['cli']) - 1:+.1%} (median)")

import neurontrace  # noqa: E402  (after the subprocess runs: the bench's own process stays idle there)

m = neurontrace.load(model, threads=args.threads)
prompts = [f"Prompt number {i} is about" for i in range(16)]
steps = args.tokens  # one forward step per new token (the prompts are prefilled in the first)
calls = []


def observer(act, hook):
    calls.append(float(act[:, 0].sum()))


def run():
    """CPU seconds of this process (every thread) for one generation."""
    start = time.process_time()
    m.generate(prompts, max_new_tokens=args.tokens, stop_at_eos=False, batch=16)
    return time.process_time() - start


run()  # warm-up
plain, hooked = [], []
for _ in range(args.repeats):
    plain.append(run())
    with m.hooks(fwd_hooks=[("blocks.6.mlp.hook_post", observer)] * args.copies):
        hooked.append(run())
assert len(calls) == args.repeats * steps * args.copies
per_call = (min(hooked) - min(plain)) / steps / args.copies
step = min(plain) / steps
print(f"batch 16, {args.tokens} tokens, CPU time: {step * 1e3:.1f} ms per step without Python hooks, "
      f"{min(hooked) / steps * 1e3:.1f} ms with {args.copies} observers on blocks.6.mlp.hook_post: "
      f"one observer adds {per_call * 1e6:.0f} us per step ({per_call / step:+.2%})")
