"""Shared fixtures of the Python tests (run by ctest as PythonTests, with PYTHONPATH=build/python,
NT_SHARED_DIR and NT_CLI_PATH set by python/CMakeLists.txt)."""
import json
import os
import struct
import subprocess

import numpy as np
import pytest

import neurontrace

SHARED = os.environ.get("NT_SHARED_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
CLI = os.environ.get("NT_CLI_PATH", "")
MODELS = os.path.join(SHARED, "fixtures", "models")


def read_safetensors(path):
    """A safetensors file as {name: numpy array} (F32 and I64 only: what the goldens hold)."""
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        data = f.read()
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(data[begin:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return out


def goldens(model):
    folder = os.path.join(MODELS, model, "goldens")
    with open(os.path.join(folder, "goldens.json"), encoding="utf-8") as f:
        meta = json.load(f)
    return meta, folder


def run_cli(*args):
    """Runs the neurontrace command; returns (exit status, stdout, stderr)."""
    assert CLI, "NT_CLI_PATH is not set"
    r = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


@pytest.fixture(scope="session")
def gpt2():
    return neurontrace.load(os.path.join(MODELS, "gpt2-tiny"), threads=2)


@pytest.fixture(scope="session")
def llama():
    return neurontrace.load(os.path.join(MODELS, "llama-tiny"))


@pytest.fixture(params=["gpt2-tiny", "llama-tiny"])
def model_and_goldens(request, gpt2, llama):
    model = gpt2 if request.param == "gpt2-tiny" else llama
    return (model, *goldens(request.param))
