"""WOS-46985 (HDLTex ``Data.xlsx`` saved as tab-separated ``Data.txt``) -> 30,070 / 7,518 / 9,397.

Reproduces HGCLR's ``preprocess_wos.py`` / ``data_wos.py`` (reference-notes §4.1):
text = the abstract after ``clean_str`` (contraction splitting, whitespace squeeze, quote strip,
lower case); labels = [Domain, area] stripped; the label-noise merge; ``np.random.seed(7)`` shuffle of
the ids, then ``train_test_split(test_size=0.2, random_state=0)`` twice.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import numpy as np

from ..taxonomy import Taxonomy
from .common import sklearn_train_test_split, write_dataset_dir

COLUMNS = ("Y1", "Y2", "Y", "Domain", "area", "keywords", "Abstract")
_CONTRACTIONS = ("'s", "'ve", "n't", "'re", "'d", "'ll")


def clean_str(text: str) -> str:
    """Contractions split off (``it's`` -> ``it 's``), whitespace squeezed, quotes stripped, lower-cased."""
    for c in _CONTRACTIONS:
        text = text.replace(c, " " + c)
    text = re.sub(r"\s{2,}", " ", text)
    return text.strip().strip("\"'").strip().lower()


def read_wos_rows(path: str | Path) -> list[dict[str, str]]:
    """The rows of ``Data.txt`` (header line + 7 tab-separated columns)."""
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file")
        rows = []
        for lineno, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) < len(COLUMNS):
                raise ValueError(f"{path}: line {lineno} has {len(row)} columns, expected {len(COLUMNS)}")
            rows.append(dict(zip(COLUMNS, row[: len(COLUMNS)], strict=True)))
    return rows


def merge_label_noise(rows: list[dict[str, str]]) -> list[tuple[str, str]]:
    """[Domain, area] per row, with the label-noise merge [QUIRK]: where one numeric code (Y1, Y2)
    carries several area names, a later row whose name is rarer (over the whole file) than a name
    already seen for that code is relabelled to the most frequent seen name. Depends on file order."""
    counts = Counter((r["Domain"].strip(), r["area"].strip()) for r in rows)
    seen: dict[tuple[str, str], list[str]] = {}
    out = []
    for r in rows:
        domain, area = r["Domain"].strip(), r["area"].strip()
        code = (r["Y1"].strip(), r["Y2"].strip())
        names = seen.setdefault(code, [])
        best = max(names, key=lambda n: counts[(domain, n)], default=None)
        if best is not None and best != area and counts[(domain, best)] > counts[(domain, area)]:
            area = best
        elif area not in names:
            names.append(area)
        out.append((domain, area))
    return out


def prepare_wos(data_txt: str | Path, out_dir: str | Path, seed: int = 7, split_seed: int = 0) -> Path:
    rows = read_wos_rows(data_txt)
    labels = merge_label_noise(rows)
    records = [{"text": clean_str(r["Abstract"]), "labels": list(pair)} for r, pair in zip(rows, labels, strict=True)]
    # Label ids as HGCLR/HPT: level-1 names in first-appearance order, then level-2 names.
    taxonomy = Taxonomy.from_edges(_unique([(None, d) for d, _ in labels]) + _unique([(d, a) for d, a in labels]))
    np.random.seed(seed)
    ids = list(range(len(records)))
    np.random.shuffle(ids)
    train_ids, test_ids = sklearn_train_test_split(ids, test_size=0.2, random_state=split_seed)
    train_ids, dev_ids = sklearn_train_test_split(train_ids, test_size=0.2, random_state=split_seed)
    splits = {name: [records[i] for i in part] for name, part in
              (("train", train_ids), ("dev", dev_ids), ("test", test_ids))}
    return write_dataset_dir(out_dir, splits, taxonomy, {"dataset": "wos", "input": str(data_txt), "seed": seed})


def _unique(pairs: list[tuple]) -> list[tuple]:
    return list(dict.fromkeys(pairs))
