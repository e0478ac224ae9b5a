"""Python hooks: interventions against the ablation goldens, inside KV-cached batched generation,
row metadata, and what happens when a hook fails."""
import os

import numpy as np
import pytest

import neurontrace
from conftest import read_safetensors


def zero_dims(dims):
    def fn(act, hook):
        act[:, dims] = 0
    return fn


def test_ablation_hook_reproduces_golden(model_and_goldens):
    """Zeroing L{last}N3, N17, N42 of hook_resid_post: the golden's logits, block_out and greedy ids."""
    model, meta, folder = model_and_goldens
    abl = meta["ablation"]
    golden = read_safetensors(os.path.join(folder, abl["file"]))
    name = f"blocks.{abl['layer']}.hook_resid_post"
    with model.hooks(fwd_hooks=[(name, zero_dims(abl["dims"]))]):
        logits, cache = model.run_with_cache([abl["input_ids"]], names=[name])
        result = model.generate([abl["input_ids"]], max_new_tokens=20, stop_at_eos=False)[0]
    np.testing.assert_allclose(logits[0], golden["logits"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(cache[name][0], golden["block_out"][abl["layer"]], atol=1e-5, rtol=0)
    assert result["generated_ids"] == abl["greedy_ids"]
    # Leaving the block removed the hook.
    assert model.generate([abl["input_ids"]], max_new_tokens=20, stop_at_eos=False)[0]["generated_ids"] == \
        abl["unablated_greedy_ids"]


def test_returned_array_replaces_activations(gpt2):
    meta = __import__("conftest").goldens("gpt2-tiny")[0]
    abl = meta["ablation"]

    def replace(act, hook):
        out = act.copy()
        out[:, abl["dims"]] = 0
        return out

    with gpt2.hooks(fwd_hooks=[("blocks.1.hook_resid_post", replace)]):
        ids = gpt2.generate([abl["input_ids"]], max_new_tokens=20, stop_at_eos=False)[0]["generated_ids"]
    assert ids == abl["greedy_ids"]


def test_intervention_kv_cached_equals_recomputed(model_and_goldens):
    """An edit of early-layer MLP neurons on generated tokens only (their KV cache sees it), in a batch
    of prompts of different lengths: KV-cached decoding gives the tokens full recomputation gives."""
    model, meta, _ = model_and_goldens
    prompts = [p["input_ids"] for p in meta["prompts"]]

    def boost(act, hook):
        act[hook.generated, 5] += 3.0
        act[:, 9] *= 0.5

    with model.hooks(fwd_hooks=[("blocks.0.mlp.hook_post", boost)]):
        cached = model.generate(prompts, max_new_tokens=12, stop_at_eos=False, batch=2)
        recomputed = model.generate(prompts, max_new_tokens=12, stop_at_eos=False, recompute=True)
    assert [r["generated_ids"] for r in cached] == [r["generated_ids"] for r in recomputed]
    assert [r["generated_ids"] for r in cached] != [p["greedy_ids"][:12] for p in meta["prompts"]]


def test_hook_sees_row_metadata(gpt2):
    seen = []

    def observe(act, hook):
        seen.append((hook.name, hook.layer, hook.seq.tolist(), hook.pos.tolist(), hook.generated.tolist(),
                     hook.token.tolist(), act.shape))

    with gpt2.hooks(fwd_hooks=[("blocks.1.hook_resid_post", observe)]):
        r = gpt2.generate([[15496, 11], [464]], max_new_tokens=2, stop_at_eos=False)
    name, layer, seq, pos, generated, token, shape = seen[0]
    assert (name, layer, shape) == ("blocks.1.hook_resid_post", 1, (3, 64))
    assert seq == [0, 0, 1] and pos == [0, 1, 0] and generated == [False] * 3 and token == [15496, 11, 464]
    assert seen[1][2:6] == ([0, 1], [2, 1], [True, True], [r[0]["generated_ids"][0], r[1]["generated_ids"][0]])


def test_hook_on_every_layer_and_kept_arrays(gpt2):
    kept = []
    gpt2.add_hook("mlp.hook_post", lambda act, hook: kept.append((hook.layer, act)))
    try:
        gpt2.run_with_cache("Hello, my name is", names=[])
    finally:
        gpt2.reset_hooks()
    assert [layer for layer, _ in kept] == [0, 1]
    _, cache = gpt2.run_with_cache("Hello, my name is", names=["mlp.hook_post"])
    np.testing.assert_array_equal(kept[1][1], cache["blocks.1.mlp.hook_post"][0])


def test_exception_in_hook_propagates_and_model_stays_usable(gpt2):
    meta = __import__("conftest").goldens("gpt2-tiny")[0]
    calls = []

    def failing(act, hook):
        calls.append(1)
        if len(calls) == 3:
            raise ZeroDivisionError("boom in hook")

    with pytest.raises(ZeroDivisionError, match="boom in hook"):
        with gpt2.hooks(fwd_hooks=[("blocks.0.hook_attn_out", failing)]):
            gpt2.generate("Hello, my name is", max_new_tokens=10)
    prompts = [p["input_ids"] for p in meta["prompts"]]
    results = gpt2.generate(prompts, max_new_tokens=20, stop_at_eos=False)
    assert [r["generated_ids"] for r in results] == [p["greedy_ids"] for p in meta["prompts"]]


def test_bad_hook_results_and_reentry(gpt2):
    with gpt2.hooks(fwd_hooks=[("blocks.0.hook_resid_post", lambda act, hook: np.zeros((1, 3)))]):
        with pytest.raises(neurontrace.Error, match=r"blocks\.0\.hook_resid_post returned an array of shape \(1, 3\)"):
            gpt2.generate("Hello", max_new_tokens=2)
    with gpt2.hooks(fwd_hooks=[("blocks.0.hook_resid_post", lambda act, hook: gpt2.to_tokens("x") and gpt2.generate("x"))]):
        with pytest.raises(neurontrace.Error, match="inside one of its own hooks"):
            gpt2.generate("Hello", max_new_tokens=2)
    assert gpt2.generate("Hello", max_new_tokens=1)[0]["generated_ids"]
