"""Helpers shared by the benchmark preparation commands: seeded splits and writing a dataset folder."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..taxonomy import Taxonomy


def sklearn_train_test_split(items: Sequence, test_size: float, random_state: int) -> tuple[list, list]:
    """``sklearn.model_selection.train_test_split(items, test_size=..., random_state=...)``, shuffled.

    Re-stated so preparation needs no scikit-learn: ShuffleSplit draws one permutation from
    ``RandomState(random_state)``; the first ``ceil(test_size * n)`` indices are test, the next
    ``n - n_test`` train (tests check equality with scikit-learn when it is installed).
    """
    n = len(items)
    n_test = math.ceil(test_size * n)
    permutation = np.random.RandomState(random_state).permutation(n)
    test, train = permutation[:n_test], permutation[n_test:n]
    return [items[i] for i in train], [items[i] for i in test]


def write_dataset_dir(out_dir: str | Path, splits: dict[str, list[dict]], taxonomy: Taxonomy,
                      provenance: dict) -> Path:
    """Write ``{split}.jsonl`` (``{"text", "labels"}``), ``taxonomy.json`` and ``prepare.json`` (counts + inputs)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for split, records in splits.items():
        with open(out / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps({"text": record["text"], "labels": record["labels"]}, ensure_ascii=False) + "\n")
    (out / "taxonomy.json").write_text(json.dumps(taxonomy.to_dict(), indent=1, ensure_ascii=False), encoding="utf-8")
    counts = {split: len(records) for split, records in splits.items()}
    (out / "prepare.json").write_text(json.dumps({**provenance, "counts": counts}, indent=1), encoding="utf-8")
    return out


def close_labels(names: Sequence[str], taxonomy: Taxonomy) -> list[str]:
    """Ancestor-closed names in taxonomy id order."""
    return [taxonomy.labels[i] for i in sorted(taxonomy.ancestor_closure(taxonomy.id(n) for n in names))]
