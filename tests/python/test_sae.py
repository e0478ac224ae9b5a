"""Model.load_sae: encode and decode against the SAE fixtures' goldens (fixtures README section 6)."""
import json
import os

import numpy as np
import pytest

import neurontrace
from conftest import SHARED, read_safetensors

SAES = os.path.join(SHARED, "fixtures", "saes", "gpt2-tiny")
with open(os.path.join(SAES, "goldens", "goldens.json"), encoding="utf-8") as f:
    GOLDENS = json.load(f)
TOLERANCE = GOLDENS["tolerance_abs"]


@pytest.mark.parametrize("entry", GOLDENS["saes"].values(), ids=lambda e: e["id"])
def test_encode_decode_match_goldens(gpt2, entry):
    sae = gpt2.load_sae(os.path.join(SAES, entry["path"]))
    assert (sae.d_in, sae.d_sae, sae.hook_name) == (entry["d_in"], entry["d_sae"], entry["hook_name"])
    for prompt in entry["prompts"]:
        g = read_safetensors(os.path.join(SAES, "goldens", prompt["file"]))
        acts = sae.encode(g["sae_in"])
        assert acts.shape == g["feature_acts"].shape
        np.testing.assert_allclose(acts, g["feature_acts"], rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(sae.decode(g["feature_acts"]), g["sae_recons"], rtol=0, atol=TOLERANCE)


def test_load_sae_errors(gpt2):
    sae = gpt2.load_sae(os.path.join(SAES, GOLDENS["saes"]["standard"]["path"]))
    with pytest.raises(neurontrace.Error, match=r"encode: expected a \[rows, "):
        sae.encode(np.zeros((2, sae.d_in + 1), dtype=np.float32))
    with pytest.raises(neurontrace.Error):
        gpt2.load_sae(os.path.join(SAES, "no-such-sae"))


@pytest.mark.parametrize("entry", GOLDENS["saes"].values(), ids=lambda e: e["id"])
def test_forward_is_the_reconstruction(gpt2, entry):
    sae = gpt2.load_sae(os.path.join(SAES, entry["path"]))
    g = read_safetensors(os.path.join(SAES, "goldens", entry["prompts"][0]["file"]))
    np.testing.assert_allclose(sae.forward(g["sae_in"]), g["sae_recons"], rtol=0, atol=TOLERANCE)


def test_forward_undoes_constant_norm_rescale(gpt2, tmp_path):
    # The jumprelu SAE with constant_norm_rescale: a row x is scaled by s = sqrt(d_in) / |x| before
    # encoding (SAELens), so the reconstruction in the model's space is decode(encode(s x)) / s.
    entry = GOLDENS["saes"]["jumprelu"]
    src = os.path.join(SAES, entry["path"])
    folder = tmp_path / "sae"
    folder.mkdir()
    for name in os.listdir(src):
        if name != "cfg.json":
            os.symlink(os.path.join(src, name), folder / name)
    with open(os.path.join(src, "cfg.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    cfg["normalize_activations"] = "constant_norm_rescale"
    (folder / "cfg.json").write_text(json.dumps(cfg), encoding="utf-8")
    plain = gpt2.load_sae(src)
    rescaling = gpt2.load_sae(str(folder))
    x = read_safetensors(os.path.join(SAES, "goldens", entry["prompts"][0]["file"]))["sae_in"]
    s = np.sqrt(x.shape[1]) / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    scaled = (x * s).astype(np.float32)
    expected = plain.decode(plain.encode(scaled)) / s
    np.testing.assert_allclose(rescaling.forward(x), expected, rtol=1e-5, atol=TOLERANCE)
    np.testing.assert_allclose(rescaling.encode(x), plain.encode(scaled), rtol=1e-5, atol=TOLERANCE)
