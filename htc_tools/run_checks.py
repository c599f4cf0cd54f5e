"""Checks a training run makes before it loads a model: the output folder (never overwritten by accident), the
splits the flags need, ``--config_overrides`` keys and, for a trained folder, its label hierarchy."""

from __future__ import annotations

import copy
import difflib
import fnmatch
import json
import logging
import shutil
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from transformers import TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from .data import SPLIT_ALIASES, split_files
from .hub import MODEL_FILE_PATTERNS
from .taxonomy import Taxonomy

logger = logging.getLogger(__name__)
RESUME_LAST = ("last", "true")
CONSTRUCTOR_KEYWORDS = {"attn_implementation", "dtype"}
# what a run writes into --output_dir besides the model folder's files (hub.MODEL_FILE_PATTERNS)
RUN_OUTPUT_PATTERNS = ("checkpoint-*", "runs", "label_pretraining", "*results.json", "trainer_state.json",
                       "training_args.bin", "test_predictions.jsonl")


def check_output_dir(args: TrainingArguments, overwrite: bool, inputs: Mapping[str, str | None]) -> str | None:
    """Refuse a non-empty ``--output_dir`` unless ``--overwrite_output_dir`` (then :func:`clear_output_dir` empties
    it, so the folder ends with only this run's files; refused where it holds anything a run does not write) or
    ``--resume_from_checkpoint`` (a checkpoint folder, or ``last``: the newest ``checkpoint-N`` in ``--output_dir``).
    ``inputs`` (``{"--dataset_dir": path, ...}``) may not lie in a folder to be cleared. Returns the checkpoint to
    resume from, or ``None``."""
    out = Path(args.output_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--output_dir {out} is a file, not a folder")
    resume = args.resume_from_checkpoint
    if resume:
        if overwrite:
            raise ValueError("--overwrite_output_dir and --resume_from_checkpoint exclude each other: the first "
                             "removes the checkpoints the second continues from")
        if str(resume).lower() in RESUME_LAST:
            resume = get_last_checkpoint(str(out)) if out.is_dir() else None
            if resume is None:
                raise FileNotFoundError(f"--resume_from_checkpoint {args.resume_from_checkpoint}: no checkpoint-N "
                                        f"folder in --output_dir {out}")
        elif not Path(resume).is_dir():
            raise FileNotFoundError(f"--resume_from_checkpoint {resume}: no such checkpoint folder")
        logger.info("resuming from %s", resume)
        return str(resume)
    contents = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if not contents:
        return None
    if not overwrite:
        last = get_last_checkpoint(str(out)) if args.do_train else None
        resume_hint = f", --resume_from_checkpoint last to continue from {Path(last).name}" if last else ""
        shown = ", ".join(contents[:5]) + (", ..." if len(contents) > 5 else "")
        raise FileExistsError(f"--output_dir {out} is not empty ({shown}): pass --overwrite_output_dir to replace "
                              f"its contents{resume_hint}, or choose another --output_dir")
    _check_nothing_inside(out, {**inputs, "the working directory": str(Path.cwd())})
    foreign = [name for name in contents if not _written_by_a_run(out / name)]
    if foreign:
        raise FileExistsError(f"--output_dir {out} holds {', '.join(foreign[:5])}" + (", ..." if len(foreign) > 5
                              else "") + ", which no run of this script wrote; --overwrite_output_dir replaces "
                              "only a run's files: move those away or choose another --output_dir")
    return None


def _written_by_a_run(entry: Path) -> bool:
    """Whether ``entry`` of an output folder is something this script (the Trainer, the model folder) writes."""
    return any(fnmatch.fnmatch(entry.name, p) for p in (*MODEL_FILE_PATTERNS, *RUN_OUTPUT_PATTERNS))


def clear_output_dir(args: TrainingArguments) -> None:
    """Remove the contents of ``--output_dir`` (``--overwrite_output_dir``; the first process, the others wait).
    Called once the data and model have loaded, so a run that fails on its inputs leaves the old folder."""
    out = Path(args.output_dir)
    with args.main_process_first(desc="clearing --output_dir", local=False):
        if args.process_index == 0 and out.is_dir():
            entries = sorted(out.iterdir())
            if entries:
                logger.warning("--overwrite_output_dir: removing %s from %s", ", ".join(p.name for p in entries), out)
            for entry in entries:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()


def _check_nothing_inside(out: Path, inputs: Mapping[str, str | None]) -> None:
    root = out.resolve()
    for what, path in inputs.items():
        if path and Path(path).exists() and (Path(path).resolve() == root or root in Path(path).resolve().parents):
            raise ValueError(f"--overwrite_output_dir would delete {what} {path}, which lies in --output_dir {out}; "
                             "choose another --output_dir")


def split_needs(args: TrainingArguments) -> dict[str, list[str]]:
    """Per split (``train``/``dev``/``test``), the flags that need it: ``--do_train``, ``--do_eval`` /
    ``--eval_strategy`` / ``--load_best_model_at_end``, ``--do_predict``."""
    strategy = getattr(args.eval_strategy, "value", args.eval_strategy)  # --eval_strategy also sets do_eval
    evaluation = [f"--eval_strategy {strategy}"] if strategy != "no" else ["--do_eval"] if args.do_eval else []
    evaluation += ["--load_best_model_at_end"] if args.load_best_model_at_end else []
    return {"train": ["--do_train"] if args.do_train else [], "dev": evaluation,
            "test": ["--do_predict"] if args.do_predict else []}


def check_splits_present(available: Collection[str], source: str, args: TrainingArguments) -> None:
    """The splits that the flags need must be among ``available``; the error names the flag and the split."""
    for split, flags in split_needs(args).items():
        if flags and split not in available:
            names = "validation / dev / val" if split == "dev" else split
            raise ValueError(f"{' and '.join(flags)} need(s) the {split} split ({names}), which {source} lacks "
                             f"(splits: {', '.join(sorted(available)) or 'none'})")


def check_requested_splits(dataset_dir: str, args: TrainingArguments) -> dict[str, Path]:
    """The split files that ``--do_train``, ``--do_eval`` / ``--eval_strategy`` / ``--load_best_model_at_end`` and
    ``--do_predict`` need must exist; the error names the flag and the files looked for. Returns the files."""
    files = split_files(dataset_dir)
    for split, flags in split_needs(args).items():
        if flags and split not in files:
            looked_for = " / ".join(f"{stem}.jsonl" for stem in SPLIT_ALIASES[split])
            raise FileNotFoundError(f"{' and '.join(flags)} need(s) the {split} split, but {dataset_dir} has no "
                                    f"{looked_for} (or .json / .csv)")
    return files


def parse_config_overrides(text: str | None, config, for_what: str = "") -> dict[str, object]:
    """``--config_overrides "a=1,b=false,c=level"`` -> keyword arguments, checked against ``config``'s fields
    (:func:`unknown_config_keys`) and typed like ``PretrainedConfig.update_from_string``: a value takes the type of
    the field's current value (int, float, bool, str; a bad value is an error naming the key); a field without
    such a value (``None``, a list) or a constructor keyword takes the value as JSON, else as a string."""
    items = [item for item in (text or "").split(",") if item.strip()]
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--config_overrides: expected key=value, got {item!r}")
        pairs.append((key.strip(), value.strip()))
    unknown = unknown_config_keys(dict(pairs), config)
    if unknown:
        raise ValueError(f"--config_overrides: unknown key(s) {', '.join(unknown)}{for_what} (fields of "
                         f"{type(config).__name__})")
    probe = copy.deepcopy(config)
    overrides: dict[str, object] = {}
    for key, value in pairs:
        if isinstance(getattr(config, key, None), bool | int | float | str):
            try:
                probe.update_from_string(f"{key}={value}")
            except ValueError as err:
                raise ValueError(f"--config_overrides {key}={value}: {err}") from None
            overrides[key] = getattr(probe, key)
        else:
            try:
                overrides[key] = json.loads(value)
            except json.JSONDecodeError:
                overrides[key] = value
    return overrides


def unknown_config_keys(overrides: Mapping[str, object], config) -> list[str]:
    """Keys of ``overrides`` that are not fields of ``config`` (a ``PretrainedConfig``), each with its closest
    field when there is one: ``["los_columns (did you mean 'loss_columns'?)"]``."""
    properties = {k for k in dir(type(config)) if isinstance(getattr(type(config), k, None), property)}
    # e.g. num_labels (a property); attn_implementation and dtype are constructor keywords, not stored fields
    fields = set(config.to_dict()) | {k for k in properties if not k.startswith("_")} | CONSTRUCTOR_KEYWORDS
    unknown = []
    for key in overrides:
        if key not in fields:
            close = difflib.get_close_matches(key, sorted(fields), n=1)
            unknown.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return unknown


def label_names_mismatch(config, taxonomy: Taxonomy) -> str | None:
    """How a model ``config``'s ``id2label`` differs from the taxonomy's labels (names, then id order)."""
    names = [config.id2label[i] for i in range(len(config.id2label))]
    if names == list(taxonomy.labels):
        return None
    only_model = [n for n in names if n not in taxonomy]
    only_data = sorted(set(taxonomy.labels) - set(names), key=taxonomy.id)
    if only_model or only_data:
        return (f"{len(only_data)} label(s) only in the taxonomy {only_data[:5]}, {len(only_model)} only in the "
                f"model {only_model[:5]}")
    i = next((i for i, (a, b) in enumerate(zip(names, taxonomy.labels, strict=False)) if a != b), None)
    if i is None:
        return f"the model has {len(names)} labels, the taxonomy {taxonomy.num_labels}"
    return f"label id {i} is {names[i]!r} in the model but {taxonomy.labels[i]!r} in the taxonomy"


def hierarchy_mismatch(config, taxonomy: Taxonomy) -> str | None:
    """How the label hierarchy stored in a model ``config`` (``id2label`` + ``label_parents``) differs from
    ``taxonomy``: the first difference in words, or ``None`` when names, order and every parent agree."""
    names_differ = label_names_mismatch(config, taxonomy)
    if names_differ:
        return names_differ
    names = list(taxonomy.labels)
    stored = getattr(config, "label_parents", None) or [[] for _ in names]
    if len(stored) != len(names):
        return f"the model stores {len(stored)} parent lists for {len(names)} labels"

    def show(ids: Sequence[object]) -> str:
        return str([names[p] if isinstance(p, int) and 0 <= p < len(names) else p for p in ids]) if ids else \
            "none (top level)"

    for i, (model_parents, data_parents) in enumerate(zip(stored, taxonomy.parents, strict=True)):
        if set(model_parents) != set(data_parents):
            return (f"label {names[i]!r} has parents {show(model_parents)} in the model but {show(data_parents)} "
                    "in the taxonomy")
    return None
