"""Decision thresholds of ``decode()``: one global probability threshold, or one per level
(``config.level_thresholds``, e.g. tuned on dev by ``htc_tools.thresholds``), compared on the scores as
``score > logit(t)``.

Identical copies ship in ``hbgl_hf``, ``hpt_hf`` and ``htc_tools.embed_lr`` (each model package is
self-contained; a test asserts the copies are equal).
"""

from __future__ import annotations

import math

import torch


def probability_logit(threshold: float, name: str = "threshold") -> float:
    """``logit(t)`` of a probability threshold ``t`` in (0, 1): ``sigmoid(s) > t  <=>  s > logit(t)``."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
        raise ValueError(f"{name} must be a probability in (0, 1), got {threshold!r}")
    return math.log(threshold) - math.log1p(-threshold)


def score_thresholds(config, label_levels: torch.Tensor, threshold: float | None = None
                     ) -> tuple[float, float | torch.Tensor]:
    """The global score threshold and the per-label one.

    An explicit ``threshold`` (a ``decode``/pipeline argument) applies to every label; without it
    ``config.level_thresholds`` (one probability per level, top level first) applies where set, else
    ``config.decode_threshold``. ``label_levels``: 1-based level per label, any shape with ``L`` elements.

    Returns ``(global, per_label)``: ``per_label`` is the global float or a ``[L]`` tensor of score thresholds.
    """
    global_threshold = probability_logit(config.decode_threshold if threshold is None else threshold)
    per_level = getattr(config, "level_thresholds", None)
    if threshold is not None or not per_level:
        return global_threshold, global_threshold
    levels = label_levels.reshape(-1)
    depth = int(levels.max()) if levels.numel() else 0
    if len(per_level) != depth:
        raise ValueError(f"config.level_thresholds has {len(per_level)} entries but the hierarchy has {depth} "
                         "levels: give one probability threshold per level, top level first")
    logits = torch.tensor([probability_logit(t, f"level_thresholds[{i}]") for i, t in enumerate(per_level)],
                          device=levels.device)
    return global_threshold, logits[levels - 1]
