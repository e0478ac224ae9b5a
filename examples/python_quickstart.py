#!/usr/bin/env python3
"""neurontrace from Python, notebook style, on the small Wikipedia GPT-2 (../shared/models/gpt2-wiki):
cache activations, trace the war and music concepts, then switch the top war neurons off with a
Python hook and compare the texts.

    PYTHONPATH=build/python python3 examples/python_quickstart.py [--model DIR] [--tokens N] [--out DIR]
"""
import argparse
import json
import os
import tempfile

import numpy as np

import neurontrace

HERE = os.path.dirname(os.path.abspath(__file__))
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", default=os.path.join(HERE, "..", "..", "shared", "models", "gpt2-wiki"))
parser.add_argument("--tokens", type=int, default=32, help="new tokens per prompt")
parser.add_argument("--out", help="study output folder (default: a temporary one)")
args = parser.parse_args()

# 1. Load the model; its hook points carry TransformerLens names.
m = neurontrace.load(args.model)
print(f"{m.config['model_type']}: {m.config['n_layers']} layers, d_model {m.config['d_model']}, "
      f"{m.config['d_mlp']} MLP neurons per layer, {len(m.hook_points)} hook points")

# 2. One forward pass with every MLP neuron cached: which fire most on the last token?
prompt = "The war began when the army"
logits, cache = m.run_with_cache(prompt, names=["mlp.hook_post"])
print(f"\nrun_with_cache: logits {logits.shape}, blocks.3.mlp.hook_post {cache['blocks.3.mlp.hook_post'].shape}")
last = np.stack([cache[f"blocks.{l}.mlp.hook_post"][0, -1] for l in range(m.config["n_layers"])])
for layer, neuron in zip(*np.unravel_index(np.argsort(last, axis=None)[::-1][:3], last.shape)):
    print(f"  L{layer}N{neuron}: {last[layer, neuron]:.3f}")
print(f"  next token: {m.to_string([int(logits[0, -1].argmax())])!r}")

# 3. Trace war vs music against the neutral baseline (the prompts of the study the CLI runs):
#    the CLI's consistency tables, printed by the same code, and returned as lists of dicts.
with open(os.path.join(HERE, "gpt2-wiki-study.json"), encoding="utf-8") as f:
    example = json.load(f)
config = {
    "model": args.model,
    "generation": {**example["generation"], "max_new_tokens": args.tokens},
    "trace": {"sites": ["mlp.hook_post"], "positions": ["generated"], "normalize": "zscore", "per_sample": 10,
              "rows": 5},
    "baseline": example["baseline"],
    "concepts": {c: example["concepts"][c] for c in ("war", "music")},
}
out = args.out or tempfile.mkdtemp(prefix="nt-quickstart-")
study = neurontrace.study(config, out=out, print_tables=True)
war = next(r for r in study["results"] if r["concept"] == "war")["sites"][0]["table"]
top = [(row["layer"], row["neuron"]) for row in war[:5]]
print(f"top war neurons: {', '.join(f'L{l}N{n}' for l, n in top)}   (report: {out}/report.html)")

# 4. Switch them off with a Python hook, in KV-cached generation, and compare.
layers = {}
for layer, neuron in top:
    layers.setdefault(layer, []).append(neuron)


def ablate(act, hook):
    act[:, layers[hook.layer]] = 0


prompts = example["concepts"]["war"][:3]
sampling = dict(max_new_tokens=args.tokens, temperature=0.8, top_k=40, seed=1)
plain = m.generate(prompts, **sampling)
with m.hooks(fwd_hooks=[(f"blocks.{layer}.mlp.hook_post", ablate) for layer in layers]):
    ablated = m.generate(prompts, **sampling)
for p, a, b in zip(prompts, plain, ablated):
    print(f"\n{p}\n  unsteered: {a['text']!r}\n  ablated:   {b['text']!r}")
