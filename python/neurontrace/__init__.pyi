# Type stubs of the neurontrace package (python/neurontrace/__init__.py and its C++ core).
import contextlib
from os import PathLike
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

Prompt = Union[str, Sequence[int], npt.NDArray[np.integer]]
Prompts = Union[Prompt, Sequence[Prompt]]

class Error(ValueError):
    """Bad input, with the command line's one-line message."""

class HookInfo:
    """What a hook function gets besides the activations."""
    @property
    def name(self) -> str: ...
    @property
    def layer(self) -> int: ...
    @property
    def seq(self) -> npt.NDArray[np.int64]: ...
    @property
    def pos(self) -> npt.NDArray[np.int64]: ...
    @property
    def generated(self) -> npt.NDArray[np.bool_]: ...
    @property
    def token(self) -> npt.NDArray[np.int64]: ...

HookFn = Callable[[npt.NDArray[np.float32], HookInfo], Optional[npt.NDArray[np.float32]]]

class ActivationCache(dict[str, npt.NDArray[np.float32]]):
    """Activations by hook name, [batch, pos, width], zero-padded after each prompt's end."""
    lengths: npt.NDArray[np.int64]
    mask: npt.NDArray[np.bool_]

class Sae:
    @property
    def d_in(self) -> int: ...
    @property
    def d_sae(self) -> int: ...
    @property
    def hook_name(self) -> str: ...
    def encode(self, x: npt.ArrayLike) -> npt.NDArray[np.float32]: ...
    def decode(self, f: npt.ArrayLike) -> npt.NDArray[np.float32]: ...
    def forward(self, x: npt.ArrayLike) -> npt.NDArray[np.float32]: ...

class Model:
    """A loaded model and its tokenizer (create it with load())."""
    @property
    def config(self) -> dict[str, Any]: ...
    @property
    def hook_points(self) -> list[str]: ...
    def to_tokens(self, text: str) -> list[int]: ...
    def to_string(self, ids: Sequence[int]) -> str: ...
    def generate(self, prompts: Prompts, max_new_tokens: int = 32, temperature: float = 0.0, top_k: int = 0,
                 top_p: float = 1.0, seed: int = 0, stop_at_eos: bool = True, batch: int = 64,
                 recompute: bool = False) -> list[dict[str, Any]]: ...
    def run_with_cache(self, prompts: Prompts, names: Union[str, Sequence[str], None] = None
                       ) -> tuple[npt.NDArray[np.float32], ActivationCache]: ...
    def add_hook(self, name: str, fn: HookFn) -> None: ...
    def reset_hooks(self) -> None: ...
    def load_sae(self, spec: Union[str, PathLike[str]], sae_center: bool = False,
                 sae_scale: Optional[float] = None) -> Sae: ...
    def hooks(self, fwd_hooks: Sequence[tuple[str, HookFn]] = ()) -> contextlib.AbstractContextManager[Model]: ...

def load(model: Union[str, PathLike[str]], weights: str = "f32", threads: Optional[int] = None) -> Model: ...
def study(config: Union[str, PathLike[str], dict[str, Any]], out: Union[str, PathLike[str]],
          model: Optional[str] = None, print_tables: bool = False) -> dict[str, Any]: ...
def steer(model: Model, prompts: Union[Sequence[str], str, PathLike[str]], ablate: Union[str, Sequence[str]] = (),
          sae: Union[str, PathLike[str], None] = None, latents: Sequence[int] = (), direction: str = "",
          baseline: Union[str, PathLike[str], None] = None, site: str = "", mode: Optional[str] = None,
          where: str = "all", from_trace: Union[str, PathLike[str], None] = None, top: int = 0,
          trace_positions: str = "", concept_words: Union[str, Sequence[str]] = (), controls: int = 20,
          control_seed: int = 0, sae_center: bool = False, sae_scale: Optional[float] = None,
          max_new_tokens: int = 32, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0,
          stop_at_eos: bool = True, batch: int = 64) -> dict[str, Any]: ...
def trace(model: Model, prompts: Union[Sequence[str], str, PathLike[str]], concept: str = "concept",
          baseline: Union[Sequence[str], str, PathLike[str], None] = None,
          baseline_atlas: Union[str, PathLike[str], None] = None, atlas: Union[str, PathLike[str], None] = None,
          words: Union[str, Sequence[str]] = (), sites: Union[str, Sequence[str]] = ...,
          sae: Union[str, PathLike[str], Sequence[Union[str, PathLike[str]]]] = ...,
          positions: Union[str, Sequence[str]] = ..., skip_first: bool = False,
          select_words: Union[str, Sequence[str]] = (), select_regex: str = "", select_window: int = 0,
          normalize: str = "subtract", rank_by: str = "mean", per_sample: int = 10, rows: int = 0,
          std_floor: float = 0.0, max_new_tokens: int = 32, temperature: float = 0.0, top_k: int = 0,
          top_p: float = 1.0, seed: int = 0, stop_at_eos: bool = True, batch: int = 64,
          print_tables: bool = False) -> dict[str, Any]: ...
def atlas(model: Model, corpus: Union[str, PathLike[str], Sequence[Union[str, PathLike[str]]]],
          out: Union[str, PathLike[str]], sites: Union[str, Sequence[str]] = (),
          sae: Union[str, PathLike[str], Sequence[Union[str, PathLike[str]]]] = (), text_field: str = "text",
          skip_bad_lines: bool = False, context: int = 128, top: int = 20, samples: int = 20,
          threshold: float = 1.0, max_tokens: int = 0, batch: int = 8, checkpoint_every: int = 100,
          shard: str = "") -> dict[str, Any]: ...
def atlas_query(dir: Union[str, PathLike[str]], words: Union[str, Sequence[str]], window: int = 5, rows: int = 20,
                csv: Union[str, PathLike[str], None] = None, model: Union[str, PathLike[str], None] = None,
                print_table: bool = False) -> list[dict[str, Any]]: ...
