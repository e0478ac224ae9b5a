"""neurontrace.study from Python gives the CLI's study.json; a Python hook reproduces the study's
steering."""
import json
import os

import pytest

import neurontrace
from conftest import MODELS, run_cli

CONFIG = {
    "model": os.path.join(MODELS, "gpt2-tiny"),
    "generation": {"max_new_tokens": 6, "temperature": 0.8, "top_k": 40, "seed": 3},
    "trace": {"sites": ["mlp.hook_post"], "positions": ["last", "generated"], "per_sample": 3},
    "baseline": {"prompts": ["The quick brown fox", "She opened the window"]},
    "concepts": {"war": ["The war began when", "The army attacked"], "music": ["The band played", "The song was"]},
    "steer": {"concept": "war", "prompt": "The soldiers", "top_n": 2, "controls": 3},
}


@pytest.fixture(scope="module")
def cli_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    config = folder / "config.json"
    config.write_text(json.dumps(CONFIG))
    status, _, err = run_cli("study", str(config), "--out", str(folder / "cli"), "-q")
    assert status == 0, err
    with open(folder / "cli" / "study.json", encoding="utf-8") as f:
        return config, json.load(f)


def test_study_equals_cli(cli_study, tmp_path):
    config, expected = cli_study
    assert neurontrace.study(str(config), out=tmp_path / "from-path") == expected
    assert neurontrace.study(CONFIG, out=tmp_path / "from-dict") == expected
    assert (tmp_path / "from-dict" / "report.html").exists()
    table = expected["results"][0]["sites"][0]["table"]
    assert table and {"rank", "layer", "neuron", "occurrences", "percent"} <= set(table[0])


def test_study_bad_config_has_cli_message(tmp_path):
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({**CONFIG, "trace": {"per_sample": 0}}))
    with pytest.raises(neurontrace.Error) as e:
        neurontrace.study(str(config), out=tmp_path / "out")
    status, _, err = run_cli("study", str(config), "--out", str(tmp_path / "cli"))
    assert status != 0 and err == f"neurontrace: error: {e.value}\n"


def test_python_hook_reproduces_study_steering(cli_study, gpt2):
    steering = cli_study[1]["steering"]
    layers = {}
    for n in steering["intervention"]["neurons"]:
        layers.setdefault(n["layer"], []).append(n["neuron"])

    def zero(act, hook):
        act[:, layers[hook.layer]] = 0

    sampling = {k: CONFIG["generation"][k] for k in ("max_new_tokens", "temperature", "top_k", "seed")}
    expected = steering["prompts"][0]
    assert gpt2.generate("The soldiers", **sampling)[0]["generated_ids"] == expected["unsteered"]["ids"]
    with gpt2.hooks(fwd_hooks=[(f"blocks.{layer}.mlp.hook_post", zero) for layer in layers]):
        assert gpt2.generate("The soldiers", **sampling)[0]["generated_ids"] == expected["steered"]["ids"]


def test_trace_equals_cli(gpt2, tmp_path):
    """The same options from Python and on the command line give the same trace.json."""
    prompts, baseline = tmp_path / "war.json", tmp_path / "baseline.json"
    prompts.write_text(json.dumps({"prompts": CONFIG["concepts"]["war"]}))
    baseline.write_text(json.dumps({"prompts": CONFIG["baseline"]["prompts"]}))
    status, out, err = run_cli("trace", "-m", os.path.join(MODELS, "gpt2-tiny"), "--concept", "war", "--prompts",
                               str(prompts), "--baseline", str(baseline), "--site", "mlp.hook_post", "--positions",
                               "last", "--positions", "generated", "--normalize", "zscore", "--per-sample", "4",
                               "-n", "5", "--temperature", "0.7", "--seed", "2", "--out", str(tmp_path / "cli"))
    assert status == 0, err
    with open(tmp_path / "cli" / "trace.json", encoding="utf-8") as f:
        expected = json.load(f)
    options = dict(concept="war", sites=["mlp.hook_post"], positions=["last", "generated"], normalize="zscore",
                   per_sample=4, max_new_tokens=5, temperature=0.7, seed=2)
    assert neurontrace.trace(gpt2, str(prompts), baseline=str(baseline), **options) == expected
    from_lists = neurontrace.trace(gpt2, CONFIG["concepts"]["war"], baseline=CONFIG["baseline"]["prompts"], **options)
    assert from_lists["results"] == expected["results"]
    assert from_lists["config"] == {**expected["config"], "prompts_file": "", "baseline_file": ""}


def test_trace_bad_option_named_as_keyword(gpt2):
    with pytest.raises(neurontrace.Error, match="^per_sample: "):
        neurontrace.trace(gpt2, ["The war began"], per_sample=0)
    with pytest.raises(neurontrace.Error, match="trace site"):
        neurontrace.trace(gpt2, ["The war began"], sites=["blocks.1.mlp.hook_post"])
