"""Bad input raises neurontrace.Error with the command line's one-line message; Ctrl-C stops a
long generation."""
import os
import signal
import threading
import time

import pytest

import neurontrace
from conftest import MODELS, run_cli


def cli_error(*args):
    status, _, err = run_cli(*args)
    assert status != 0 and err.startswith("neurontrace: error: ")
    return err[len("neurontrace: error: "):].rstrip("\n")


def test_error_is_value_error():
    assert issubclass(neurontrace.Error, ValueError)


def test_missing_model_has_cli_message(tmp_path):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(neurontrace.Error) as e:
        neurontrace.load(missing)
    assert str(e.value) == cli_error("generate", "-m", missing, "-p", "Hello")


def test_unknown_hook_point_has_cli_message(gpt2, tmp_path):
    prompts = tmp_path / "p.json"
    prompts.write_text('{"prompts": ["Hello"]}')
    with pytest.raises(neurontrace.Error) as e:
        gpt2.run_with_cache("Hello", names=["mlp.hook_pre_linear"])
    assert str(e.value) == cli_error("trace", "-m", os.path.join(MODELS, "gpt2-tiny"), "--prompts", str(prompts),
                                     "--site", "mlp.hook_pre_linear")
    with pytest.raises(neurontrace.Error) as e:
        gpt2.add_hook("hook_resid_posst", print)
    assert str(e.value) == cli_error("trace", "-m", os.path.join(MODELS, "gpt2-tiny"), "--prompts", str(prompts),
                                     "--site", "hook_resid_posst")


def test_out_of_range_layer_and_token(gpt2):
    with pytest.raises(neurontrace.Error, match=r"layer 2 out of range in 'blocks\.2\.hook_resid_post'"):
        gpt2.run_with_cache("Hello", names=["blocks.2.hook_resid_post"])
    with pytest.raises(neurontrace.Error, match="token id 50257 is outside the vocabulary"):
        gpt2.to_string([50257])
    with pytest.raises(neurontrace.Error):
        gpt2.generate([[50257]], max_new_tokens=1)


def test_bad_options_named_as_keywords(gpt2):
    with pytest.raises(neurontrace.Error, match="^top_p: "):
        gpt2.generate("Hello", top_p=2.0)
    with pytest.raises(neurontrace.Error, match="^max_new_tokens: "):
        gpt2.generate("Hello", max_new_tokens=-1)
    with pytest.raises(neurontrace.Error, match="^batch: "):
        gpt2.generate("Hello", batch=0)
    with pytest.raises(neurontrace.Error, match="prompt 1 is empty"):
        gpt2.generate(["Hello", ""])
    with pytest.raises(neurontrace.Error, match="unknown weight format 'f16'"):
        neurontrace.load(os.path.join(MODELS, "gpt2-tiny"), weights="f16")


def test_ctrl_c_stops_a_long_generation(gpt2):
    prompts = [[15496 + i] for i in range(64)]
    start = time.monotonic()
    gpt2.generate(prompts[:8], max_new_tokens=100, stop_at_eos=False)
    assert time.monotonic() - start < 10  # (warm-up)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        for _ in range(50):  # far longer than a second without Ctrl-C
            gpt2.generate(prompts, max_new_tokens=127, stop_at_eos=False)
    assert time.monotonic() - start < 0.3 + 1.0
    timer.join()
    assert gpt2.generate("Hello", max_new_tokens=1)[0]["generated_ids"]
