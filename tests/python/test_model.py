"""Loading, tokens, run_with_cache and greedy generation against the fixtures' goldens."""
import os

import numpy as np
import pytest

from conftest import read_safetensors

TOL = 1e-5


def test_config_and_hook_points(gpt2, llama):
    assert gpt2.config["n_layers"] == 2 and gpt2.config["d_model"] == 64 and gpt2.config["d_mlp"] == 256
    assert gpt2.config["d_vocab"] == 50257 and gpt2.config["model_type"] == "gpt2"
    assert gpt2.hook_points[:3] == ["hook_embed", "hook_pos_embed", "blocks.0.hook_resid_pre"]
    assert gpt2.hook_points[-1] == "ln_final.hook_normalized"
    assert "blocks.1.mlp.hook_post" in gpt2.hook_points
    assert "blocks.0.mlp.hook_pre_linear" not in gpt2.hook_points
    assert "blocks.0.mlp.hook_pre_linear" in llama.hook_points
    assert "hook_pos_embed" not in llama.hook_points


def test_tokens_round_trip(model_and_goldens):
    model, meta, _ = model_and_goldens
    for p in meta["prompts"]:
        if p["text"]:  # (an empty prompt is refused, as by the CLI)
            assert model.to_tokens(p["text"]) == p["input_ids"]
    text = meta["prompts"][1]["text"]
    ids = model.to_tokens(text)
    assert model.to_string(ids).endswith(text)


def check_prompt(logits, cache, b, golden, n_layers):
    t = len(golden["input_ids"])
    assert cache.lengths[b] == t and cache.mask[b].sum() == t
    np.testing.assert_allclose(logits[b, :t], golden["logits"], atol=TOL, rtol=0)
    np.testing.assert_allclose(cache["blocks.0.hook_resid_pre"][b, :t], golden["embeddings"], atol=TOL, rtol=0)
    for layer in range(n_layers):
        np.testing.assert_allclose(cache[f"blocks.{layer}.hook_resid_post"][b, :t], golden["block_out"][layer],
                                   atol=TOL, rtol=0)
        np.testing.assert_allclose(cache[f"blocks.{layer}.mlp.hook_post"][b, :t], golden["mlp_act"][layer],
                                   atol=TOL, rtol=0)
        if layer + 1 < n_layers:
            np.testing.assert_allclose(cache[f"blocks.{layer + 1}.hook_resid_pre"][b, :t], golden["block_out"][layer],
                                       atol=TOL, rtol=0)
    # Padding after the prompt's end stays zero.
    assert not logits[b, t:].any() and not cache["blocks.0.hook_resid_post"][b, t:].any()


def test_run_with_cache_equals_goldens(model_and_goldens):
    """All four prompts in one padded batch, every hook point cached."""
    model, meta, folder = model_and_goldens
    files = [read_safetensors(os.path.join(folder, p["file"])) for p in meta["prompts"]]
    prompts = [g["input_ids"].tolist() for g in files]
    logits, cache = model.run_with_cache(prompts)
    assert set(cache) == set(model.hook_points)
    assert logits.shape == (4, max(len(p) for p in prompts), model.config["d_vocab"])
    for b, golden in enumerate(files):
        check_prompt(logits, cache, b, golden, model.config["n_layers"])
    if model.config["model_type"] == "gpt2":  # embeddings = token + position embedding
        t = len(prompts[0])
        np.testing.assert_allclose((cache["hook_embed"] + cache["hook_pos_embed"])[0, :t], files[0]["embeddings"],
                                   atol=TOL, rtol=0)


def test_run_with_cache_names_and_text(gpt2):
    meta = __import__("conftest").goldens("gpt2-tiny")[0]
    logits, cache = gpt2.run_with_cache(meta["prompts"][0]["text"], names=["mlp.hook_post", "hook_embed"])
    assert sorted(cache) == ["blocks.0.mlp.hook_post", "blocks.1.mlp.hook_post", "hook_embed"]
    assert cache["blocks.1.mlp.hook_post"].shape == (1, 5, 256) and cache["blocks.1.mlp.hook_post"].dtype == np.float32


def test_greedy_generation_equals_goldens(model_and_goldens):
    model, meta, _ = model_and_goldens
    results = model.generate([p["input_ids"] for p in meta["prompts"]], max_new_tokens=20, stop_at_eos=False)
    for r, p in zip(results, meta["prompts"]):
        assert r["generated_ids"] == p["greedy_ids"]
        assert r["stop_reason"] == "length" and r["prompt_ids"] == p["input_ids"]


def test_generate_matches_cli_json(gpt2):
    import json
    from conftest import MODELS, run_cli
    args = ["-p", "Hello, my name is", "-p", "The quick brown fox", "-n", "6", "--temperature", "0.8", "--top-k", "40",
            "--seed", "7"]
    status, out, err = run_cli("generate", "-m", os.path.join(MODELS, "gpt2-tiny"), *args, "--json")
    assert status == 0, err
    got = gpt2.generate(["Hello, my name is", "The quick brown fox"], max_new_tokens=6, temperature=0.8, top_k=40, seed=7)
    assert got == json.loads(out)
