"""neurontrace.atlas and atlas_query from Python write and return what the CLI's atlas and atlas
query write; bad input raises neurontrace.Error with the CLI's message."""
import csv
import json
import os
import signal
import threading
import time

import pytest

import neurontrace
from conftest import SHARED, run_cli

MODEL = os.path.join(SHARED, "fixtures", "models", "gpt2-tiny")
CORPUS = os.path.join(SHARED, "corpora", "wiki-sample.jsonl")
# About a second on gpt2-tiny.
FLAGS = {"max_tokens": 1500, "context": 48, "top": 4, "samples": 3, "batch": 4}


def cli_flags(options):
    return [arg for name, value in options.items() for arg in ("--" + name.replace("_", "-"), str(value))]


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def same_rows(rows, expected):
    """Python's typed rows against the CLI's CSV rows (text)."""
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected):
        assert list(row) == list(want)
        for key, value in row.items():
            assert (value == float(want[key])) if isinstance(value, (int, float)) else (value == want[key]), key


@pytest.fixture(scope="module")
def cli_atlas(tmp_path_factory):
    out = tmp_path_factory.mktemp("atlas") / "cli"
    status, stdout, err = run_cli("atlas", "-m", MODEL, "--corpus", CORPUS, "--out", str(out), *cli_flags(FLAGS))
    assert status == 0, err
    return out, stdout


def test_atlas_equals_cli(cli_atlas, gpt2, tmp_path):
    cli_out, cli_stdout = cli_atlas
    result = neurontrace.atlas(gpt2, corpus=[CORPUS], out=tmp_path / "py", **FLAGS)
    for name in ("atlas.safetensors", "summary.csv"):
        assert (tmp_path / "py" / name).read_bytes() == (cli_out / name).read_bytes(), name
    assert cli_stdout == (f"atlas: {result['documents']} documents, {result['tokens']} tokens, "
                          f"{result['units']} units -> {cli_out}\n")
    assert result["out"] == str(tmp_path / "py") and not result["part"] and result["skipped_lines"] == 0
    assert result["tokens"] == FLAGS["max_tokens"] and result["units"] == 2 * 256
    same_rows(result["summary"], read_csv(cli_out / "summary.csv"))


def test_atlas_shard_writes_a_part(gpt2, tmp_path):
    result = neurontrace.atlas(gpt2, CORPUS, out=tmp_path / "part", shard="1/2", **FLAGS)
    assert result["part"] and result["summary"] == []
    assert sorted(os.listdir(tmp_path / "part")) == ["atlas.safetensors"]


def test_atlas_query_equals_cli(cli_atlas, tmp_path):
    cli_out, _ = cli_atlas
    status, stdout, err = run_cli("atlas", "query", str(cli_out), "--words", "war,army", "--rows", "3",
                                  "--csv", str(tmp_path / "cli.csv"))
    assert status == 0, err
    rows = neurontrace.atlas_query(cli_out, words=["war", "army"], rows=3, csv=tmp_path / "py.csv")
    assert (tmp_path / "py.csv").read_bytes() == (tmp_path / "cli.csv").read_bytes()
    same_rows(rows, read_csv(tmp_path / "cli.csv"))
    assert rows and {"rank", "site", "layer", "index", "share", "lift", "best_context"} <= set(rows[0])
    assert neurontrace.atlas_query(cli_out, "war,army") == rows  # words as the flag's comma list
    assert (cli_out / "concept_war_army.csv").exists()


def cli_error(*args):
    status, _, err = run_cli(*args)
    assert status != 0
    return err


@pytest.mark.parametrize("corpus, sites", [("missing.jsonl", []), (CORPUS, ["mlp.hook_nothing"])])
def test_atlas_bad_input_has_cli_message(gpt2, tmp_path, corpus, sites):
    corpus = str(tmp_path / corpus) if corpus != CORPUS else corpus
    with pytest.raises(neurontrace.Error) as e:
        neurontrace.atlas(gpt2, corpus, out=tmp_path / "py", sites=sites, **FLAGS)
    site_flags = [arg for site in sites for arg in ("--site", site)]
    err = cli_error("atlas", "-m", MODEL, "--corpus", corpus, "--out", str(tmp_path / "cli"), *site_flags,
                    *cli_flags(FLAGS))
    assert err == f"neurontrace: error: {e.value}\n"
    assert ("cannot open" if sites == [] else "unknown hook site") in str(e.value)


def test_atlas_bad_options_named_as_keywords(gpt2, tmp_path):
    with pytest.raises(neurontrace.Error, match=r"^top: must be between 1 and 10000$"):
        neurontrace.atlas(gpt2, CORPUS, out=tmp_path, top=0)
    with pytest.raises(neurontrace.Error, match=r"^batch: must be between 1 and 4096$"):
        neurontrace.atlas(gpt2, CORPUS, out=tmp_path, batch=0)
    with pytest.raises(neurontrace.Error, match=r"^shard: "):
        neurontrace.atlas(gpt2, CORPUS, out=tmp_path, shard="2/2")


def test_atlas_query_bad_words_named_as_keywords(cli_atlas, tmp_path):
    cli_out, _ = cli_atlas
    with pytest.raises(neurontrace.Error, match=r"^words: has an empty word$"):
        neurontrace.atlas_query(cli_out, words=["war", " "], csv=tmp_path / "q.csv")
    with pytest.raises(neurontrace.Error, match=r"^window: must not be negative$"):
        neurontrace.atlas_query(cli_out, words=["war"], window=-1, csv=tmp_path / "q.csv")


def test_atlas_query_bad_input_has_cli_message(cli_atlas, tmp_path):
    with pytest.raises(neurontrace.Error) as e:
        neurontrace.atlas_query(tmp_path / "nothing", words=["war"])
    assert cli_error("atlas", "query", str(tmp_path / "nothing"), "--words", "war") == f"neurontrace: error: {e.value}\n"


def test_atlas_refuses_a_hooked_model(gpt2, tmp_path):
    with gpt2.hooks(fwd_hooks=[("blocks.0.mlp.hook_post", lambda act, hook: None)]):
        with pytest.raises(neurontrace.Error, match="reset_hooks"):
            neurontrace.atlas(gpt2, CORPUS, out=tmp_path, **FLAGS)


def test_ctrl_c_stops_an_atlas_leaving_its_checkpoint(gpt2, tmp_path):
    heldout = os.path.join(SHARED, "corpora", "wiki-heldout.jsonl")  # far longer than a second to scan
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        neurontrace.atlas(gpt2, heldout, out=tmp_path, context=48, checkpoint_every=1)
    assert time.monotonic() - start < 0.5 + 1.0
    timer.join()
    assert (tmp_path / "atlas.checkpoint.safetensors").exists()  # the same call resumes from here


def test_trace_with_atlas_equals_cli(cli_atlas, gpt2, tmp_path):
    """trace's atlas options from Python (atlas, words, baseline_atlas) give the CLI's trace.json."""
    cli_out, _ = cli_atlas
    prompts = ["The war began when", "The army attacked the"]
    prompts_file = tmp_path / "war.json"
    prompts_file.write_text('{"prompts": ["The war began when", "The army attacked the"]}')
    status, _, err = run_cli("trace", "-m", MODEL, "--concept", "war", "--prompts", str(prompts_file), "--site",
                             "mlp.hook_post", "--baseline-atlas", str(cli_out), "--normalize", "zscore",
                             "--atlas", str(cli_out), "--words", "war,army", "--per-sample", "3", "-n", "4",
                             "--out", str(tmp_path / "cli"))
    assert status == 0, err
    with open(tmp_path / "cli" / "trace.json", encoding="utf-8") as f:
        expected = json.load(f)
    result = neurontrace.trace(gpt2, str(prompts_file), concept="war", sites=["mlp.hook_post"],
                               baseline_atlas=cli_out, normalize="zscore", atlas=cli_out, words="war,army",
                               per_sample=3, max_new_tokens=4)
    assert result == expected
    assert "atlas_share" in result["results"][0]["sites"][0]["table"][0]
    assert neurontrace.trace(gpt2, prompts, concept="war", sites=["mlp.hook_post"], baseline_atlas=cli_out,
                             normalize="zscore", atlas=cli_out, words=["war", "army"], per_sample=3,
                             max_new_tokens=4)["results"] == expected["results"]
