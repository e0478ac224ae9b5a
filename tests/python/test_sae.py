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
