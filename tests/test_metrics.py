from __future__ import annotations

import numpy as np
import pytest

from htc_tools.metrics import (
    ancestor_augment,
    hierarchical_metrics,
    inconsistency_rate,
    load_evaluate_metric,
    micro_macro_f1,
)
from htc_tools.taxonomy import Taxonomy

# ids: A=0, B=1, A1=2, A2=3, B1=4
TAX = Taxonomy.from_dict({"Root": ["A", "B"], "A": ["A1", "A2"], "B": ["B1"]})
# s1: right on A, A1; s2: gold {A, A2}, predicts the child A2 without its parent A;
# s3: gold {B}, no prediction at all. B1 is in neither gold nor predictions.
GOLD = np.array([[1, 0, 1, 0, 0], [1, 0, 0, 1, 0], [0, 1, 0, 0, 0]])
PRED = np.array([[1, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 0]])

# Hand-computed (see the comments): per-label F1 = A 2/3, B 0, A1 1, A2 1, B1 0 (absent, still counted).
EXPECTED = {
    "micro_precision": 1.0,  # 3 right / 3 predicted
    "micro_recall": 0.6,  # 3 right / 5 gold
    "micro_f1": 0.75,
    "macro_precision": 3 / 5,  # (1 + 0 + 1 + 1 + 0) / 5
    "macro_recall": 2.5 / 5,  # (0.5 + 0 + 1 + 1 + 0) / 5
    "macro_f1": (2 / 3 + 1 + 1) / 5,
    "hier_precision": 1.0,  # augmented predictions {A,A1}, {A,A2}, {}: 4 right / 4
    "hier_recall": 0.8,  # 4 / 5
    "hier_f1": 8 / 9,
    "level_1_micro_f1": 0.5,  # A right once; gold A, A, B
    "level_1_macro_f1": (2 / 3 + 0) / 2,
    "level_2_micro_f1": 1.0,
    "level_2_macro_f1": 2 / 3,  # A1 1, A2 1, B1 0
    "inconsistency_rate": 1 / 3,  # A2 in s2 of 3 predicted labels
}


def test_hand_computed_case() -> None:
    scores = hierarchical_metrics(GOLD, PRED, TAX)
    assert scores.keys() == EXPECTED.keys()
    for key, value in EXPECTED.items():
        assert scores[key] == pytest.approx(value), key


def test_evaluate_module_loads_offline_and_agrees() -> None:
    metric = load_evaluate_metric()
    # The module takes columns in the caller's order: permute them and pass parents in that order.
    perm = [4, 2, 0, 3, 1]
    position = {old: new for new, old in enumerate(perm)}
    parents = [[position[p] for p in TAX.parents[old]] for old in perm]
    scores = metric.compute(predictions=PRED[:, perm].tolist(), references=GOLD[:, perm].tolist(),
                            label_parents=parents)
    for key, value in EXPECTED.items():
        assert scores[key] == pytest.approx(value), key


def test_micro_macro_match_sklearn_on_random_data() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    gold = rng.random((50, 12)) < 0.2
    pred = rng.random((50, 12)) < 0.2
    gold[:, 7] = pred[:, 7] = False  # a label absent from the split still counts in the macro mean
    ours = micro_macro_f1(gold, pred)
    for avg in ("micro", "macro"):
        ref = sklearn_metrics.f1_score(gold, pred, average=avg, zero_division=0)
        assert ours[f"{avg}_f1"] == pytest.approx(ref)


def test_zero_denominators_give_zero() -> None:
    empty = np.zeros((2, 5))
    scores = hierarchical_metrics(empty, empty, TAX)
    assert all(v == 0.0 for v in scores.values())


def test_ancestor_augment_and_inconsistency_on_dag(toy_taxonomy: Taxonomy) -> None:
    pred = np.zeros((1, toy_taxonomy.num_labels))
    pred[0, toy_taxonomy.id("biochem")] = 1
    pred[0, toy_taxonomy.id("biology")] = 1
    augmented = ancestor_augment(pred, toy_taxonomy)
    assert {toy_taxonomy.labels[i] for i in np.flatnonzero(augmented[0])} == {"biochem", "biology", "chemistry",
                                                                              "science"}
    # biochem has one of its two parents predicted (consistent); biology's parent science is missing.
    assert inconsistency_rate(pred, toy_taxonomy) == pytest.approx(1 / 2)


def test_shape_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        micro_macro_f1(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="5 labels"):
        hierarchical_metrics(np.zeros((2, 3)), np.zeros((2, 3)), TAX)
