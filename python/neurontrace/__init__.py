"""neurontrace from Python: load a model, generate, cache activations, hook and edit them, and run
the command line's workflows — on the same C++ engine as the ``neurontrace`` command.

    import neurontrace
    m = neurontrace.load("../shared/models/gpt2-wiki")
    logits, cache = m.run_with_cache("The army attacked", names=["blocks.1.mlp.hook_post"])
    with m.hooks(fwd_hooks=[("blocks.1.mlp.hook_post", lambda act, hook: act[:, [3, 17]].fill(0))]):
        print(m.generate("The army attacked", max_new_tokens=8)[0]["text"])

Hook points use TransformerLens names (``m.hook_points``). Bad input raises ``neurontrace.Error``
(a ``ValueError``) with the command line's one-line message. The GIL is released while the engine
computes; Ctrl-C stops a generation or a study between two steps (``KeyboardInterrupt``).
"""
import contextlib
import csv
import io
import json
import os
import sys
import tempfile
import warnings

import numpy as np

from . import _core
from ._core import Error, HookInfo, Sae

__all__ = ["load", "trace", "steer", "study", "atlas", "atlas_query", "Model", "ActivationCache", "HookInfo", "Sae", "Error"]


def _prompt_list(prompts):
    """A prompt (text or token ids) or a list of them -> a list of prompts."""
    if isinstance(prompts, str):
        return [prompts]
    if isinstance(prompts, np.ndarray):
        return [prompts.tolist()] if prompts.ndim == 1 else [row.tolist() for row in prompts]
    prompts = list(prompts)
    if prompts and all(isinstance(p, (int, np.integer)) for p in prompts):
        return [[int(p) for p in prompts]]
    return [p if isinstance(p, str) else [int(t) for t in p] for p in prompts]


def _names(value):
    """A name or path, or a list of them -> a list of str."""
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    return [os.fspath(v) for v in value]


def _words(value):
    """Concept words as the --words flag takes them (a comma list) or a list -> a list of str."""
    return value.split(",") if isinstance(value, str) else list(value)


def _csv_table(text):
    """A CSV table as a list of dicts; a column whose every value is a number holds numbers (int
    or float), as pandas.read_csv reads it."""
    rows = list(csv.DictReader(io.StringIO(text)))
    for column in rows[0].keys() if rows else ():
        for kind in (int, float):
            try:
                values = [kind(row[column]) for row in rows]
            except ValueError:
                continue
            for row, value in zip(rows, values):
                row[column] = value
            break
    return rows


class ActivationCache(dict):
    """Activations by TransformerLens hook name, each a float32 array [batch, pos, width].

    Prompts of different lengths are padded on the right with zeros: ``mask`` [batch, pos] is True
    where a position holds a token of its prompt, ``lengths`` [batch] is each prompt's length.
    """

    def __init__(self, arrays, lengths):
        super().__init__(arrays)
        self.lengths = lengths
        longest = int(lengths.max()) if len(lengths) else 0
        self.mask = np.arange(longest)[None, :] < lengths[:, None]


class Model(_core.Model):
    """A loaded model and its tokenizer (create it with :func:`load`).

    ``config`` (dict, TransformerLens field names), ``hook_points`` (the points this architecture
    fires, in forward order), ``to_tokens(text)`` (ids, BOS prepended when the model wants it),
    ``to_string(ids)``, ``generate(...)``, ``run_with_cache(...)``, hooks (``hooks``, ``add_hook``,
    ``reset_hooks``).
    """

    def generate(self, prompts, max_new_tokens=32, temperature=0.0, top_k=0, top_p=1.0, seed=0,
                 stop_at_eos=True, batch=64, recompute=False):
        """Continue each prompt (text or token ids) with KV-cached batched decoding.

        Greedy by default; sampling applies temperature, then top-k, then top-p, each prompt
        with its own random stream from (seed, prompt index), as the CLI does. Registered hooks run
        at every step. ``recompute=True`` reruns the whole sequence at each step instead of using
        the KV cache (slow; for checking). Returns one dict per prompt, the CLI's ``--json``
        fields: prompt, prompt_ids, generated_ids, text, stop_reason ("length" or "eos").
        """
        return super().generate(_prompt_list(prompts), max_new_tokens, temperature, top_k, top_p, seed,
                                stop_at_eos, batch, recompute)

    def run_with_cache(self, prompts, names=None):
        """Run the prompts through the model once (no generation) and keep activations.

        ``prompts``: a text, token ids, or a list of them. ``names``: hook names to keep
        (``"blocks.1.mlp.hook_post"``; ``"mlp.hook_post"`` means every layer's); default: every
        point in ``hook_points``. Returns ``(logits, cache)``: logits float32 [batch, pos, vocab]
        and an :class:`ActivationCache` of [batch, pos, width] arrays, both padded with zeros
        after each prompt's end (``cache.mask``, ``cache.lengths``). Registered hooks run first,
        so the cache holds what they leave.
        """
        if isinstance(names, str):
            names = [names]
        logits, arrays, lengths = self._run_with_cache(_prompt_list(prompts), list(names or []))
        return logits, ActivationCache(arrays, lengths)

    def add_hook(self, name, fn):
        """Add ``fn(act, hook)`` on a hook point (``"mlp.hook_post"``: every layer's) until
        ``reset_hooks()``.

        ``act`` is a float32 array [rows, width]: the rows this forward step computed (prompt
        tokens of sequences joining the batch, the next token of the others). ``hook``
        (:class:`HookInfo`) gives the point and each row's seq, pos, generated and token. Edit
        ``act`` in place or return a new array of its shape to change the model's activations;
        return None to keep them. ``act`` is a copy that the function may keep.
        An exception in ``fn`` stops the call and reaches its caller; the model stays usable.
        """
        super().add_hook(name, fn)

    @contextlib.contextmanager
    def hooks(self, fwd_hooks=()):
        """Hooks for the duration of a ``with`` block: ``fwd_hooks`` is a list of
        ``(name, fn)`` as in :meth:`add_hook`; they are removed on leaving the block."""
        saved = self._get_hooks()
        try:
            for name, fn in fwd_hooks:
                super().add_hook(name, fn)
            yield self
        finally:
            self._set_hooks(saved)


def load(model, weights="f32", threads=None):
    """Load a model: a Hugging Face model folder, or a name found in the Hugging Face cache
    (or downloaded, as the CLI does). ``weights``: the linear layers' precision, "f32" (the
    checkpoint's values), "bf16" or "int8". ``threads``: worker threads for the whole process
    (default: one per core)."""
    if threads is not None:
        _core.set_threads(threads)
    return Model(os.fspath(model), weights)


def steer(model, prompts, ablate=(), sae=None, latents=(), direction="", baseline=None, site="", mode=None,
          where="all", from_trace=None, top=0, trace_positions="", concept_words=(), controls=20, control_seed=0,
          sae_center=False, sae_scale=None, max_new_tokens=32, temperature=0.0, top_k=0, top_p=1.0, seed=0,
          stop_at_eos=True, batch=64):
    """Steer as ``neurontrace steer`` does (same options, named as its flags) and return its
    ``--json`` output as Python objects: the intervention, each prompt's unsteered and steered texts
    and token ids, the effect measures and their summary against the random controls.

    ``model``: a loaded :class:`Model` without hooks. ``prompts``: a list of texts, or the path of a
    ``{"prompts": [...]}`` file. Neurons: ``ablate`` ("L11N197,L11N373" or a list of such names) or
    ``from_trace`` (a trace.json) with ``top``; ``site`` their hook site. SAE latents: ``sae`` (a
    SAELens folder, a ``params.npz`` or a Hub id) with ``latents`` (ints), edited by ``mode`` or
    with their decoder rows added by ``direction="add:S"``; ``baseline`` (path) gives the latents'
    means for ``mode="mean"``. ``mode``: zero (default), mean, scale:F, set:V, add:V.
    """
    options = _core._SteerOptions()
    if isinstance(prompts, (str, os.PathLike)):
        options.prompts_file = os.fspath(prompts)
    else:
        options.prompts = list(prompts)
    options.ablate = ablate if isinstance(ablate, str) else ",".join(ablate)
    options.sae = os.fspath(sae) if sae is not None else ""
    options.latents = list(latents)
    options.direction = direction
    options.baseline = os.fspath(baseline) if baseline is not None else ""
    options.site = site
    options.mode_given = mode is not None
    options.mode = "zero" if mode is None else mode
    options.where = where
    options.from_trace = os.fspath(from_trace) if from_trace is not None else ""
    options.top = top
    options.trace_positions = trace_positions
    options.concept_words = [concept_words] if isinstance(concept_words, str) else list(concept_words)
    options.controls = controls
    options.control_seed = control_seed
    options.set_sae_options(sae_center, sae_scale)
    options.set_generation(max_new_tokens, temperature, top_k, top_p, seed, stop_at_eos, batch)
    return json.loads(model._steer(options))


def study(config, out, model=None, print_tables=False):
    """Run a study as ``neurontrace study CONFIG --out OUT [--model MODEL]`` does and return its
    ``study.json`` as Python objects (tables are lists of dicts; ``pandas.DataFrame`` takes them).

    ``config``: a study config path, or the config as a dict. Every output file (report.html,
    CSV, heatmaps, checkpoints) is written to ``out`` as by the CLI, and a second run with the same
    ``out`` resumes. ``print_tables``: also print the consistency tables to stdout.
    """
    out = os.fspath(out)
    if print_tables:
        sys.stdout.flush()  # (the tables are printed by C++, after what Python printed before)
    if isinstance(config, dict):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "study.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(config, f)
            _core._study(path, out, model or "", print_tables)
    else:
        _core._study(os.fspath(config), out, model or "", print_tables)
    with open(os.path.join(out, "study.json"), encoding="utf-8") as f:
        return json.load(f)


def trace(model, prompts, concept="concept", baseline=None, baseline_atlas=None, atlas=None, words=(), sites=(),
          sae=(), positions=("generated",), skip_first=False, select_words=(), select_regex="", select_window=0,
          normalize="subtract", rank_by="mean", per_sample=10, rows=0, std_floor=0.0, max_new_tokens=32,
          temperature=0.0, top_k=0, top_p=1.0, seed=0, stop_at_eos=True, batch=64, print_tables=False):
    """Trace a concept as ``neurontrace trace`` does (same options, named as its flags) and return
    its ``trace.json`` as Python objects: the config, model identity, prompts, generations, each
    sample's top neurons, the consistency tables (``result["results"][i]["sites"][j]["table"]``,
    lists of dicts) and per-neuron statistics.

    ``model``: a loaded :class:`Model` (its hooks run as interventions before the recorder).
    ``prompts`` / ``baseline``: lists of texts, or paths of ``{"prompts": [...]}`` files.
    ``baseline_atlas``: an atlas folder whose per-unit mean and spread replace baseline prompts
    (``--baseline-atlas``). ``atlas`` and ``words`` (a list or a comma list): each reported neuron's
    atlas concept share for those words (``--atlas DIR --words ...``), in every table.
    ``sites``: hook sites traced at every layer (none: ``hook_resid_post``, or only the SAEs' latents
    when ``sae`` is given). ``sae``: SAE folders, ``params.npz`` files or Hub ids (``--sae``), traced
    at their hook points (``<hook>.hook_sae_acts_post``); their fit is in ``result["sae_fit"]``.
    ``print_tables``: also print the consistency tables as the CLI prints them.
    """
    options = _core._TraceOptions()
    options.concept = concept
    for name, value in (("prompts", prompts), ("baseline", baseline)):
        if isinstance(value, (str, os.PathLike)):
            setattr(options, name + "_file", os.fspath(value))
        elif value is not None:
            setattr(options, name, list(value))
    options.baseline_atlas = os.fspath(baseline_atlas) if baseline_atlas is not None else ""
    options.atlas = os.fspath(atlas) if atlas is not None else ""
    options.words = _words(words)
    options.sites = [sites] if isinstance(sites, str) else list(sites)
    options.saes = _names(sae)
    options.positions = [positions] if isinstance(positions, str) else list(positions)
    options.skip_first = skip_first
    options.select_words = [select_words] if isinstance(select_words, str) else list(select_words)
    options.select_regex = select_regex
    options.select_window = select_window
    options.normalize = normalize
    options.rank_by = rank_by
    options.per_sample = per_sample
    options.rows = rows
    options.std_floor = std_floor
    options.set_generation(max_new_tokens, temperature, top_k, top_p, seed, stop_at_eos, batch)
    text, tables = model._trace(options)
    if print_tables:
        print(tables, end="")
    return json.loads(text)


def atlas(model, corpus, out, sites=(), sae=(), text_field="text", skip_bad_lines=False, context=128, top=20,
          samples=20, threshold=1.0, max_tokens=0, batch=8, checkpoint_every=100, shard=""):
    """Scan a corpus as ``neurontrace atlas`` does (same options, named as its flags) and write the
    same atlas folder to ``out``: atlas.safetensors, summary.csv, units/ (one JSON and HTML page per
    unit) and index.html; or, with ``shard="I/N"``, only the part's atlas.safetensors for
    ``neurontrace atlas merge``. A killed or interrupted scan resumes from its checkpoint in ``out``.

    ``model``: a loaded :class:`Model` without hooks. ``corpus``: a file or a list of files (JSONL,
    the text in ``text_field``, or plain text; gzip'd or not). ``sites``: hook sites scanned at
    every layer (none: ``mlp.hook_post``, or only the SAEs' latents when ``sae`` is given).
    ``sae``: SAE folders, ``params.npz`` files or Hub ids whose latents are units too.
    ``max_tokens``: stop after this many corpus tokens (0: all).

    Returns a dict: ``out``, ``documents``, ``tokens``, ``units`` (count), ``skipped_lines``
    (malformed JSONL lines skipped with ``skip_bad_lines``), ``part`` (a shard's part) and
    ``summary``: summary.csv as a list of dicts, one per unit (site, layer, index, mean, std, min,
    max, density, top_token; empty for a part).
    """
    options = _core._AtlasOptions()
    options.corpus = _names(corpus)
    options.out = os.fspath(out)
    options.sites = [sites] if isinstance(sites, str) else list(sites)
    options.saes = _names(sae)
    options.text_field = text_field
    options.skip_bad_lines = skip_bad_lines
    options.context = context
    options.top = top
    options.samples = samples
    options.threshold = threshold
    options.max_tokens = max_tokens
    options.batch = batch
    options.checkpoint_every = checkpoint_every
    options.shard = shard
    result = {"out": options.out, **model._atlas(options), "summary": []}
    if result["skipped_lines"]:
        warnings.warn(f"skipped {result['skipped_lines']} malformed corpus line(s)")
    if not result["part"]:
        with open(os.path.join(options.out, "summary.csv"), encoding="utf-8") as f:
            result["summary"] = _csv_table(f.read())
    return result


def atlas_query(dir, words, window=5, rows=20, csv=None, model=None, print_table=False):
    """Rank an atlas's units by how concentrated their top contexts are on a concept, as
    ``neurontrace atlas query DIR --words ...`` does, and return its CSV table (every unit) as a
    list of dicts: rank, site, layer, index, share, base_rate, lift, contexts, max, best_context.

    ``dir``: an atlas folder (or its atlas.safetensors). ``words``: the concept's words (a list, or
    one comma-separated str). ``csv``: where the CSV is written (default:
    ``DIR/concept_<words>.csv``). ``model``: the model folder for the tokenizer (default: the one
    the atlas recorded). ``print_table``: also print the first ``rows`` rows as the CLI does.
    """
    options = _core._AtlasQueryOptions()
    options.dir = os.fspath(dir)
    options.words = _words(words)
    options.window = window
    options.rows = rows
    options.csv = os.fspath(csv) if csv is not None else ""
    options.model = os.fspath(model) if model is not None else ""
    table, _, text = _core._atlas_query(options)
    if print_table:
        print(table, end="")
    return _csv_table(text)
