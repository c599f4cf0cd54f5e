"""Metrics for hierarchical multi-label classification, HiAGM-exact.

All functions take multi-hot matrices ``[num_samples, num_labels]`` in taxonomy id order (anything
``numpy.asarray`` accepts; non-zero = positive). Conventions (the ones every HTC paper's tables use,
from HiAGM's ``eval.py``, kept by HBGL and HPT):

* per label: P = right / predicted and R = right / gold, each 0 when its denominator is 0;
  F1 = 2PR / (P + R), 0 when P + R = 0;
* macro = the mean over ALL labels of the label set: a label absent from the split and never
  predicted scores 0 (excluding such labels would inflate macro-F1);
* micro from global counts, 0 on a zero denominator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .taxonomy import Taxonomy

EVALUATE_MODULE_DIR = Path(__file__).with_name("hierarchical_f1")


def _as_bool(matrix: object, name: str) -> np.ndarray:
    arr = np.asarray(matrix)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D multi-hot matrix [num_samples, num_labels], got shape {arr.shape}")
    return arr if arr.dtype == np.bool_ else arr != 0  # no copy of what is already boolean


def _check_pair(y_true: object, y_pred: object) -> tuple[np.ndarray, np.ndarray]:
    gold, pred = _as_bool(y_true, "y_true"), _as_bool(y_pred, "y_pred")
    if gold.shape != pred.shape:
        raise ValueError(f"y_true {gold.shape} and y_pred {pred.shape} differ in shape")
    return gold, pred


def _div(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


def _f1(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    return _div(2 * p * r, p + r)


def micro_macro_f1(y_true: object, y_pred: object, columns: np.ndarray | None = None) -> dict[str, float]:
    """HiAGM micro/macro precision, recall and F1 over ``columns`` (default: all labels)."""
    gold, pred = _check_pair(y_true, y_pred)
    if columns is not None:
        gold, pred = gold[:, columns], pred[:, columns]
    right = (gold & pred).sum(0)
    n_pred, n_gold = pred.sum(0), gold.sum(0)
    precision, recall = _div(right, n_pred), _div(right, n_gold)
    micro_p, micro_r = _div(right.sum(), n_pred.sum()), _div(right.sum(), n_gold.sum())
    n = max(gold.shape[1], 1)
    return {
        "micro_precision": float(micro_p),
        "micro_recall": float(micro_r),
        "micro_f1": float(_f1(micro_p, micro_r)),
        "macro_precision": float(precision.sum() / n),
        "macro_recall": float(recall.sum() / n),
        "macro_f1": float(_f1(precision, recall).sum() / n),
    }


def _ancestor_index(taxonomy: Taxonomy) -> tuple[np.ndarray, np.ndarray]:
    """CSR form of the strict ancestor sets: label ``i``'s ancestors are ``indices[indptr[i]:indptr[i + 1]]``
    (``O(L * depth)``, where a dense closure matrix is ``O(L^2)``)."""
    sizes = np.fromiter((len(a) for a in taxonomy.ancestors), dtype=np.int64, count=taxonomy.num_labels)
    indptr = np.concatenate([[0], np.cumsum(sizes)])
    indices = np.fromiter((j for a in taxonomy.ancestors for j in sorted(a)), dtype=np.int64, count=int(indptr[-1]))
    return indptr, indices


def ancestor_augment(matrix: object, taxonomy: Taxonomy) -> np.ndarray:
    """Add every ancestor of each positive label: ``[N, L]`` -> ``[N, L]`` bool (sparse: each positive entry
    adds its ancestors' entries)."""
    m = _as_bool(matrix, "matrix")
    indptr, indices = _ancestor_index(taxonomy)
    rows, labels = np.nonzero(m)
    counts = indptr[labels + 1] - indptr[labels]
    starts = np.repeat(indptr[labels] - np.cumsum(counts) + counts, counts)  # per added entry: its label's start
    columns = indices[starts + np.arange(int(counts.sum()))]
    out = m.copy()
    out[np.repeat(rows, counts), columns] = True
    return out


def hierarchical_prf(y_true: object, y_pred: object, taxonomy: Taxonomy) -> dict[str, float]:
    """Hierarchical P/R/F1 (Kiritchenko et al.): micro counts over ancestor-augmented label sets."""
    gold, pred = _check_pair(y_true, y_pred)
    gold, pred = ancestor_augment(gold, taxonomy), ancestor_augment(pred, taxonomy)
    right = (gold & pred).sum()
    p, r = _div(right, pred.sum()), _div(right, gold.sum())
    return {"hier_precision": float(p), "hier_recall": float(r), "hier_f1": float(_f1(p, r))}


def per_level_f1(y_true: object, y_pred: object, taxonomy: Taxonomy) -> dict[str, float]:
    """Micro and macro F1 restricted to each level's labels: ``level_{k}_micro_f1``, ``level_{k}_macro_f1``."""
    out: dict[str, float] = {}
    for level, ids in enumerate(taxonomy.labels_per_level, start=1):
        scores = micro_macro_f1(y_true, y_pred, columns=np.asarray(ids))
        out[f"level_{level}_micro_f1"] = scores["micro_f1"]
        out[f"level_{level}_macro_f1"] = scores["macro_f1"]
    return out


def inconsistency_rate(y_pred: object, taxonomy: Taxonomy) -> float:
    """Share of predicted labels none of whose parents is predicted.

    Top-level labels (parent = the root) are always consistent. The denominator counts every
    predicted label; 0 when nothing is predicted.
    """
    pred = _as_bool(y_pred, "y_pred")
    children = np.fromiter((c for c, ps in enumerate(taxonomy.parents) for _ in ps), dtype=np.int64)
    parents = np.fromiter((p for ps in taxonomy.parents for p in ps), dtype=np.int64)
    if not len(children):
        return 0.0
    with_parents, starts = np.unique(children, return_index=True)  # children are sorted: one run per label
    parent_hit = np.logical_or.reduceat(pred[:, parents], starts, axis=1)  # [N, labels with parents]
    orphans = int((pred[:, with_parents] & ~parent_hit).sum())
    return float(_div(orphans, pred.sum()))


def _scores(right: np.ndarray, n_pred: np.ndarray, n_gold: np.ndarray) -> dict[str, float]:
    """HiAGM micro/macro P/R/F1 from per-label counts (macro over every label given)."""
    precision, recall = _div(right, n_pred), _div(right, n_gold)
    micro_p, micro_r = _div(right.sum(), n_pred.sum()), _div(right.sum(), n_gold.sum())
    n = max(len(right), 1)
    return {"micro_precision": float(micro_p), "micro_recall": float(micro_r),
            "micro_f1": float(_f1(micro_p, micro_r)),
            "macro_precision": float(precision.sum() / n), "macro_recall": float(recall.sum() / n),
            "macro_f1": float(_f1(precision, recall).sum() / n)}


def hierarchical_metrics(y_true: object, y_pred: object, taxonomy: Taxonomy) -> dict[str, float]:
    """Everything above in one flat dict (what ``compute_metrics`` of the Trainer reports), computed on the positive
    entries only (``row * L + label`` keys): linear in the positives and the labels, not in ``rows x labels``
    products (the same values as the functions above, tested)."""
    gold, pred = _check_pair(y_true, y_pred)
    num_labels = taxonomy.num_labels
    if gold.shape[1] != num_labels:
        raise ValueError(f"matrices have {gold.shape[1]} columns but the taxonomy has {num_labels} labels")
    gold_keys, pred_keys = (np.flatnonzero(m) for m in (gold, pred))  # sorted row * L + label
    right_keys = np.intersect1d(gold_keys, pred_keys, assume_unique=True)
    counts = [np.bincount(k % num_labels, minlength=num_labels) for k in (right_keys, pred_keys, gold_keys)]
    out = _scores(*counts)
    indptr, indices = _ancestor_index(taxonomy)

    def augmented(keys: np.ndarray) -> np.ndarray:
        rows, labels = np.divmod(keys, num_labels)
        sizes = indptr[labels + 1] - indptr[labels]
        starts = np.repeat(indptr[labels] - np.cumsum(sizes) + sizes, sizes)
        ancestors = indices[starts + np.arange(int(sizes.sum()))]
        return np.union1d(keys, np.repeat(rows, sizes) * num_labels + ancestors)

    aug_gold, aug_pred = augmented(gold_keys), augmented(pred_keys)
    right = len(np.intersect1d(aug_gold, aug_pred, assume_unique=True))
    hp, hr = _div(right, len(aug_pred)), _div(right, len(aug_gold))
    out.update({"hier_precision": float(hp), "hier_recall": float(hr), "hier_f1": float(_f1(hp, hr))})
    for level, ids in enumerate(taxonomy.labels_per_level, start=1):
        ids = np.asarray(ids)
        scores = _scores(*(c[ids] for c in counts))
        out[f"level_{level}_micro_f1"] = scores["micro_f1"]
        out[f"level_{level}_macro_f1"] = scores["macro_f1"]
    # inconsistency: a predicted label below the top level none of whose parents is predicted
    children = np.fromiter((c for c, ps in enumerate(taxonomy.parents) for _ in ps), dtype=np.int64)
    parents = np.fromiter((p for ps in taxonomy.parents for p in ps), dtype=np.int64)
    rows, labels = np.divmod(pred_keys, num_labels)
    has_parents = np.zeros(num_labels, dtype=bool)
    has_parents[children] = True
    order = np.argsort(children, kind="stable")
    first = np.searchsorted(children[order], np.arange(num_labels))
    sizes = np.bincount(children, minlength=num_labels)
    sub = has_parents[labels]
    rows, labels = rows[sub], labels[sub]
    starts = np.repeat(first[labels] - np.cumsum(sizes[labels]) + sizes[labels], sizes[labels])
    link_parents = parents[order][starts + np.arange(int(sizes[labels].sum()))]
    entry = np.repeat(np.arange(len(labels)), sizes[labels])
    hit = np.isin(np.repeat(rows, sizes[labels]) * num_labels + link_parents, pred_keys)
    orphans = len(labels) - len(np.unique(entry[hit]))
    out["inconsistency_rate"] = float(_div(orphans, len(pred_keys)))
    return out


def load_evaluate_metric(**kwargs: object):
    """The same metrics as a local ``evaluate`` module (no network): ``compute(predictions=...,
    references=..., label_parents=[[parent ids] per label])``."""
    import evaluate

    return evaluate.load(str(EVALUATE_MODULE_DIR), **kwargs)
