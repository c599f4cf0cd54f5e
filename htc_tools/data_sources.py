"""Raw splits from anywhere ``datasets`` reads: a Hub dataset id, a local dataset folder (Parquet, JSON Lines,
CSV, or a ``save_to_disk`` folder) or split files, through :func:`datasets.load_dataset`. Split names are
normalised to ``train`` / ``dev`` / ``test`` (``validation``, ``valid`` and ``val`` are ``dev``)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import datasets

logger = logging.getLogger(__name__)

SPLIT_NAMES = {"train": "train", "dev": "dev", "validation": "dev", "valid": "dev", "val": "dev", "test": "test"}
FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


def builder_of(path: str) -> str:
    """The ``datasets`` builder (``json``, ``csv``, ``parquet``) of a data file."""
    builder = FILE_BUILDERS.get(Path(path).suffix.lower())
    if builder is None:
        raise ValueError(f"unsupported data file type: {path}; use .jsonl, .json, .csv or .parquet")
    return builder


def split_files_of(folder: Path) -> dict[str, str]:
    """The data files of a folder named by split (``train.parquet``, ``dev.jsonl``, ``validation.csv`` ...)."""
    found: dict[str, str] = {}
    for stem in SPLIT_NAMES:
        for suffix in FILE_BUILDERS:
            if (folder / f"{stem}{suffix}").is_file():
                found.setdefault(stem, str(folder / f"{stem}{suffix}"))
                break
    return found


def load_data_files(data_files: dict[str, str]) -> datasets.DatasetDict:
    """``{split: path}`` files through ``datasets.load_dataset``, each on its own (the splits may differ in format
    and in their other columns); CSV cells are read as text (``NA``, ``123`` and an empty cell stay strings)."""
    for split, path in data_files.items():
        if not Path(path).is_file():
            raise FileNotFoundError(f"no {split} file at {path}")
    builders = {split: builder_of(path) for split, path in data_files.items()}
    loaded = {}
    for split, path in data_files.items():
        kwargs = {}
        if builders[split] == "csv":  # every cell as text (numeric codes stay names), an empty cell as ""
            with open(path, encoding="utf-8-sig", newline="") as f:
                header = next(csv.reader(f), [])
            kwargs = {"keep_default_na": False,
                      "features": datasets.Features({column: datasets.Value("string") for column in header})}
        loaded[split] = datasets.load_dataset(builders[split], data_files={split: path}, split=split, **kwargs)
    return datasets.DatasetDict(loaded)


def load_raw_splits(dataset_name: str | None = None, dataset_config_name: str | None = None, *,
                    train_file: str | None = None, validation_file: str | None = None,
                    test_file: str | None = None, data_files: dict[str, str] | None = None) -> datasets.DatasetDict:
    """The splits of a dataset as they are (every column kept), keyed ``train`` / ``dev`` / ``test``.

    ``dataset_name``: a Hub id or a local folder (``datasets.load_dataset``; a ``save_to_disk`` folder through
    ``datasets.load_from_disk``); or split files (``train_file`` ...) or ``data_files`` ``{split: path}``.
    Splits of other names are left out (logged).
    """
    if dataset_name and (train_file or validation_file or test_file or data_files):
        raise ValueError("give --dataset_name or --train_file/--validation_file/--test_file, not both")
    if dataset_name:
        loaded = load_source(dataset_name, dataset_config_name)
    else:
        files = dict(data_files or {})
        files.update({k: v for k, v in (("train", train_file), ("validation", validation_file),
                                        ("test", test_file)) if v})
        if not files:
            raise ValueError("no data: give --dataset_name, --train_file (and --validation_file / --test_file) "
                             "or --dataset_dir")
        loaded = load_data_files(files)
    return normalise_split_names(loaded, dataset_name or "the data files")


def load_source(dataset_name: str, dataset_config_name: str | None = None) -> datasets.DatasetDict:
    """The splits of a Hub dataset id or a local folder as they are named there (a ``save_to_disk`` folder through
    ``datasets.load_from_disk``, a folder of split files through :func:`load_data_files`)."""
    folder = Path(dataset_name)
    if folder.is_dir() and ((folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()):
        loaded = datasets.load_from_disk(str(folder))
    elif folder.is_dir() and split_files_of(folder):  # only the split files (not a taxonomy or manifest .json)
        loaded = load_data_files(split_files_of(folder))
    else:
        loaded = datasets.load_dataset(dataset_name, dataset_config_name)
    return datasets.DatasetDict({"train": loaded}) if isinstance(loaded, datasets.Dataset) else loaded


def normalise_split_names(splits: datasets.DatasetDict, source: str) -> datasets.DatasetDict:
    """``validation``/``valid``/``val`` -> ``dev``; other unknown split names are dropped (logged)."""
    out: dict[str, datasets.Dataset] = {}
    for name, ds in splits.items():
        canonical = SPLIT_NAMES.get(name.lower())
        if canonical is None:
            logger.warning("%s: split %r is not train/validation/dev/val/test; left out", source, name)
        elif canonical in out:
            raise ValueError(f"{source}: two splits are the {canonical} split ({name!r} and another); keep one")
        else:
            out[canonical] = ds
    if "train" not in out and not out:
        raise ValueError(f"{source}: no train/validation/test split (splits: {list(splits)})")
    logger.info("%s: splits %s", source, ", ".join(f"{k} ({len(v)})" for k, v in out.items()))
    return datasets.DatasetDict(out)
