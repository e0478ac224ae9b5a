"""neurontrace.steer from Python gives the CLI's steer --json output, for neurons and SAE latents."""
import json
import os

import pytest

import neurontrace
from conftest import MODELS, SHARED, run_cli

TINY = os.path.join(MODELS, "gpt2-tiny")
JUMPRELU = os.path.join(SHARED, "fixtures", "saes", "gpt2-tiny", "jumprelu-v6", "blocks.0.hook_resid_post")
PROMPTS = ["The soldiers", "The army attacked"]


def cli_steer(*args):
    prompts = [a for p in PROMPTS for a in ("-p", p)]
    status, out, err = run_cli("steer", "-m", TINY, *prompts, *args, "--json")
    assert status == 0, err
    return json.loads(out)


def test_steer_neurons_equals_cli(gpt2, tmp_path):
    expected = cli_steer("--ablate", "L1N3,L0N17", "--site", "mlp.hook_post", "--mode", "scale:0.5", "--where",
                         "generated", "--concept-words", "war,army", "--controls", "3", "--control-seed", "4",
                         "-n", "6", "--temperature", "0.8", "--top-k", "40", "--seed", "3")
    options = dict(site="mlp.hook_post", mode="scale:0.5", where="generated", concept_words=["war", "army"],
                   controls=3, control_seed=4, max_new_tokens=6, temperature=0.8, top_k=40, seed=3)
    assert neurontrace.steer(gpt2, PROMPTS, ablate="L1N3,L0N17", **options) == expected
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"prompts": PROMPTS}))
    assert neurontrace.steer(gpt2, prompts, ablate=["L1N3", "L0N17"], **options) == expected
    assert expected["prompts"][0]["steered"]["ids"] != expected["prompts"][0]["unsteered"]["ids"] or \
        expected["prompts"][1]["steered"]["ids"] != expected["prompts"][1]["unsteered"]["ids"]


def test_steer_sae_latents_equals_cli(gpt2):
    expected = cli_steer("--sae", JUMPRELU, "--latents", "5,9", "--direction", "add:4", "--controls", "2",
                         "-n", "8", "--no-stop")
    got = neurontrace.steer(gpt2, PROMPTS, sae=JUMPRELU, latents=[5, 9], direction="add:4", controls=2,
                            max_new_tokens=8, stop_at_eos=False)
    assert got == expected
    assert expected["intervention"]["latents"] == [5, 9]


def test_steer_errors_are_the_clis(gpt2):
    status, _, err = run_cli("steer", "-m", TINY, "-p", "The army", "--sae", JUMPRELU, "--direction", "add:1",
                             "--mode", "zero", "--latents", "1")
    with pytest.raises(neurontrace.Error) as e:
        neurontrace.steer(gpt2, ["The army"], sae=JUMPRELU, direction="add:1", mode="zero", latents=[1])
    assert status != 0 and err == f"neurontrace: error: {e.value}\n"
    with pytest.raises(neurontrace.Error, match="^controls: must be >= 0"):
        neurontrace.steer(gpt2, ["The army"], ablate="L1N3", controls=-1)


def test_steer_refuses_a_hooked_model(gpt2):
    with gpt2.hooks(fwd_hooks=[("blocks.0.mlp.hook_post", lambda act, hook: None)]):
        with pytest.raises(neurontrace.Error, match="reset_hooks"):
            neurontrace.steer(gpt2, ["The army"], ablate="L1N3")
