"""Datasets: jsonl / csv / ``datasets`` objects -> ancestor-closed, multi-hot, tokenized HF datasets.

Every split becomes a :class:`datasets.Dataset` with the columns

* ``text`` (str),
* ``label_names`` (list[str]): the gold labels, closed under ancestors, in taxonomy id order,
* ``labels`` (list[float]): the multi-hot vector ``[num_labels]`` in taxonomy id order,

so ``Dataset.map`` / ``set_format`` and the Trainer's collators work unchanged.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import datasets

from .data_files import DataFileError as DataFileError  # re-exported: the data layer's error for bad records
from .data_files import check_csv_file, check_dataset, check_json_file, split_label_cell
from .taxonomy import Taxonomy, load_taxonomy

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
SPLIT_ALIASES = {"dev": ("dev", "val", "validation"), "train": ("train",), "test": ("test",)}
TAXONOMY_FILES = ("taxonomy.json", "taxonomy.txt", "hierarchy.txt")
TAXONOMY_SUFFIXES = (".taxonomy", ".taxonomy.json")


class UnknownLabelsError(ValueError):
    """Labels in the data that the taxonomy does not define."""


def read_records(source: str | Path | datasets.Dataset, text_field: str = "text", label_field: str = "labels",
                 label_separator: str = ";") -> datasets.Dataset:
    """Read a ``.jsonl``/``.json``/``.csv`` file or take a ``datasets.Dataset`` as it is.

    In CSV files the label cell holds a JSON list (``["a", "b"]``) or names joined by ``label_separator``.
    Every record is checked first (:mod:`htc_tools.data_files`): a null or missing field, a ``labels`` string
    among lists, bad JSON or an empty file raise :class:`DataFileError` naming the file and the line (or row).
    """
    if isinstance(source, datasets.Dataset):
        ds = source
        missing = [f for f in (text_field, label_field) if f not in ds.column_names]
        if missing:
            raise ValueError(f"{source}: missing column(s) {missing}; columns are {ds.column_names}")
        check_dataset(ds, "dataset", text_field, label_field)
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no data file at {path}")
        suffix = path.suffix.lower()
        if suffix not in (".jsonl", ".json", ".csv"):
            raise ValueError(f"{path}: unsupported data file type {suffix!r}; use .jsonl, .json or .csv")
        if suffix == ".csv":
            check_csv_file(path, text_field, label_field, label_separator)
            with path.open(encoding="utf-8-sig", newline="") as f:
                header = next(csv.reader(f))
            # every cell as text: a label column of numeric codes ("004", "401.90") stays names, not numbers
            strings = datasets.Features({column: datasets.Value("string") for column in header})
            ds = datasets.Dataset.from_csv(str(path), keep_default_na=False, features=strings)
        else:
            check_json_file(path, text_field, label_field)
            ds = datasets.Dataset.from_json(str(path))
    feature = ds.features[label_field]
    if isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string"):
        ds = ds.map(lambda r: {label_field: split_label_cell(r[label_field], label_separator)})
    return ds


def find_unknown_labels(label_lists: Iterable[Sequence[str]], taxonomy: Taxonomy) -> Counter[str]:
    """Count, per name, the labels that the taxonomy does not define."""
    return Counter(name for names in label_lists for name in names if name not in taxonomy)


def encode_labels(names: Iterable[str], taxonomy: Taxonomy) -> list[float]:
    """Multi-hot ``[num_labels]`` of ``names`` closed under ancestors (taxonomy id order)."""
    return multi_hot(taxonomy.ancestor_closure(taxonomy.id(n) for n in names), taxonomy.num_labels)


PREPARED_FEATURES = datasets.Features({
    "text": datasets.Value("string"),
    "label_names": datasets.Sequence(datasets.Value("string")),
    "labels": datasets.Sequence(datasets.Value("float32")),
})


def multi_hot(ids: Iterable[int], num_labels: int) -> list[float]:
    """``[num_labels]`` 0/1 floats with 1 at ``ids``."""
    vector = [0.0] * num_labels
    for i in ids:
        vector[i] = 1.0
    return vector


def prepare_split(source: str | Path | datasets.Dataset, taxonomy: Taxonomy, *, text_field: str = "text",
                  label_field: str = "labels", unknown_labels: str = "error", label_separator: str = ";",
                  name: str = "data") -> datasets.Dataset:
    """Normalise one split to ``text`` / ``label_names`` (ancestor-closed) / ``labels`` (multi-hot).

    Args:
        unknown_labels: ``"error"`` (default) raises listing the unknown names; ``"drop"`` removes them
            from the records and logs how many were dropped.
    """
    if unknown_labels not in ("error", "drop"):
        raise ValueError(f"unknown_labels must be 'error' or 'drop', got {unknown_labels!r}")
    ds = read_records(source, text_field, label_field, label_separator)
    unknown = find_unknown_labels(ds[label_field], taxonomy)
    if unknown and unknown_labels == "error":
        listed = ", ".join(f"{k!r} ({v}x)" for k, v in unknown.most_common(20))
        more = f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
        raise UnknownLabelsError(
            f"{name}: {len(unknown)} label(s) not in the taxonomy: {listed}{more}; "
            "fix the data or pass unknown_labels='drop'"
        )
    if unknown:
        logger.warning("%s: dropped %d occurrence(s) of %d unknown label(s): %s", name,
                       sum(unknown.values()), len(unknown), sorted(unknown))

    def normalise(record: dict) -> dict:
        known = [n for n in record[label_field] if n in taxonomy]
        closed = sorted(taxonomy.ancestor_closure(taxonomy.id(n) for n in known))
        return {"text": record[text_field], "label_names": [taxonomy.labels[i] for i in closed],
                "labels": multi_hot(closed, taxonomy.num_labels)}

    return ds.map(normalise, remove_columns=ds.column_names, features=PREPARED_FEATURES, desc=f"labels of {name}")


def prepare_splits(splits: datasets.DatasetDict, taxonomy: Taxonomy, **kwargs: object) -> datasets.DatasetDict:
    """:func:`prepare_split` over every split of a ``DatasetDict`` (e.g. from ``datasets.load_dataset``)."""
    return datasets.DatasetDict({k: prepare_split(v, taxonomy, name=k, **kwargs) for k, v in splits.items()})


def find_taxonomy_file(directory: str | Path) -> Path:
    """The taxonomy file of a dataset folder: ``taxonomy.json``/``.txt``, ``hierarchy.txt`` or ``*.taxonomy``."""
    directory = Path(directory)
    for name in TAXONOMY_FILES:
        if (directory / name).is_file():
            return directory / name
    found = sorted(p for p in directory.iterdir() if p.name.endswith(TAXONOMY_SUFFIXES))
    if len(found) == 1:
        return found[0]
    raise FileNotFoundError(
        f"{directory}: expected one taxonomy file ({', '.join(TAXONOMY_FILES)} or *.taxonomy), found {found or 'none'}"
    )


def split_files(directory: str | Path) -> dict[str, Path]:
    """The split files of a dataset folder, e.g. ``{"train": .../train.jsonl, "dev": .../val.csv}``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no dataset folder at {directory}")
    return {split: path for split in SPLITS if (path := _split_file(directory, split)) is not None}


def _split_file(directory: Path, split: str) -> Path | None:
    for stem in SPLIT_ALIASES[split]:
        for suffix in (".jsonl", ".json", ".csv"):
            if (directory / f"{stem}{suffix}").is_file():
                return directory / f"{stem}{suffix}"
    return None


def load_dataset_dir(directory: str | Path, taxonomy_file: str | Path | None = None,
                     **kwargs: object) -> tuple[datasets.DatasetDict, Taxonomy]:
    """Load ``train``/``dev``/``test`` (``.jsonl``, ``.json`` or ``.csv``) and the taxonomy of a folder.

    Keyword arguments go to :func:`prepare_split`. Missing splits are left out; no train split is an error.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no dataset folder at {directory}")
    taxonomy = load_taxonomy(taxonomy_file or find_taxonomy_file(directory))
    splits = {}
    for split in SPLITS:
        path = _split_file(directory, split)
        if path is not None:
            splits[split] = prepare_split(path, taxonomy, name=f"{directory.name}/{path.name}", **kwargs)
    if "train" not in splits:
        raise FileNotFoundError(f"{directory}: no train.jsonl / train.json / train.csv")
    return datasets.DatasetDict(splits), taxonomy


def tokenize_dataset(ds: datasets.Dataset | datasets.DatasetDict, tokenizer, max_length: int,
                     keep_columns: Sequence[str] = ("labels",)) -> datasets.Dataset | datasets.DatasetDict:
    """Add ``input_ids``/``attention_mask`` (truncated to ``max_length``, unpadded; pad in the collator)
    and keep only the model columns, formatted as torch tensors."""

    def tokenize(batch: dict) -> dict:
        return tokenizer(batch["text"], truncation=True, max_length=max_length)

    columns = ds["train"].column_names if isinstance(ds, datasets.DatasetDict) else ds.column_names
    out = ds.map(tokenize, batched=True, remove_columns=[c for c in columns if c not in keep_columns],
                 desc="tokenize")
    out.set_format("torch")
    return out
