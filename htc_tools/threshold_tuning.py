"""Decision thresholds tuned on dev: one global probability threshold, or one per level (coordinate ascent
top-down from the global one), each maximising a dev F1 objective over a grid. The result goes into the model
config (``decode_threshold``, ``level_thresholds``), which ``decode()`` and the pipeline read."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from .metrics import micro_macro_f1
from .taxonomy import Taxonomy

logger = logging.getLogger(__name__)
GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 .. 0.95
OBJECTIVES = ("mean", "micro_f1", "macro_f1")  # "mean": (micro-F1 + macro-F1) / 2
Selector = Callable[[Sequence[float]], np.ndarray]  # per-level thresholds [D] -> selection [N, L]


def objective_value(gold: np.ndarray, selected: np.ndarray, objective: str) -> float:
    scores = micro_macro_f1(gold, selected)
    return (scores["micro_f1"] + scores["macro_f1"]) / 2 if objective == "mean" else scores[objective]


def probability_selector(probabilities: np.ndarray, taxonomy: Taxonomy, hierarchy_consistent: bool = False
                         ) -> Selector:
    """Selection from fixed probabilities ``[N, L]`` (models whose scores do not depend on the threshold:
    HPT, flat, embed_lr): ``p > t[level]``, then, when consistent, top-down: a label needs a selected parent."""
    probabilities = np.asarray(probabilities)
    levels = np.asarray(taxonomy.levels) - 1  # 0-based level per label

    def select(level_thresholds: Sequence[float]) -> np.ndarray:
        selected = probabilities > np.asarray(level_thresholds)[levels][None, :]
        if hierarchy_consistent:
            for ids in taxonomy.labels_per_level[1:]:
                for label in ids:
                    selected[:, label] &= selected[:, list(taxonomy.parents[label])].any(1)
        return selected

    return select


def tune_thresholds(select: Selector, gold: np.ndarray, depth: int, mode: str = "global", objective: str = "mean",
                    grid: Sequence[float] = GRID) -> tuple[float, list[float] | None, float]:
    """``mode="global"``: the grid threshold with the best dev ``objective`` (ties: the one nearest 0.5).
    ``"per_level"``: then, level by level from the top, the threshold of that level that improves the objective
    with the others fixed (ties keep the current one). Returns ``(global, per_level or None, best objective)``."""
    if mode not in ("global", "per_level"):
        raise ValueError(f"threshold tuning mode must be 'global' or 'per_level', got {mode!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"threshold objective must be one of {OBJECTIVES}, got {objective!r}")
    gold = np.asarray(gold) > 0
    ordered = sorted(grid, key=lambda t: abs(t - 0.5))  # first best wins: ties go to the threshold nearest 0.5
    values = {t: objective_value(gold, select([t] * depth), objective) for t in ordered}
    best = max(ordered, key=values.__getitem__)
    best_value = values[best]
    if mode == "global":
        return best, None, best_value
    levels = [best] * depth
    for level in range(depth):
        for t in ordered:
            candidate = [*levels[:level], t, *levels[level + 1:]]
            value = objective_value(gold, select(candidate), objective)
            if value > best_value:
                levels, best_value = candidate, value
    return best, levels, best_value


def tune_model_thresholds(trainer, dev_dataset, taxonomy: Taxonomy, mode: str = "global", objective: str = "mean",
                          grid: Sequence[float] = GRID) -> dict[str, object]:
    """Tune ``trainer.model``'s thresholds on ``dev_dataset`` (tokenized, with labels) and write them into its
    config. HBGL feeds each level's selection into the next level's input, so its candidates are scored by
    re-decoding dev; the other models' by thresholding one pass's probabilities. A flat stock model takes a
    global threshold only. Returns what was set (``decode_threshold``, ``level_thresholds``, ``dev_objective``)."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    config = model.config
    hierarchical = hasattr(model, "decode")
    if mode == "per_level" and not hierarchical:
        raise ValueError("--tune_threshold per_level needs a hierarchical model (hbgl, hpt, embed_lr); the flat "
                         "model takes a global threshold")
    if trainer.decode_threshold is not None:
        raise ValueError("--threshold fixes the decision threshold; leave it out to tune one on dev")
    gold = np.asarray(dev_dataset["labels"])
    consistent = trainer.hierarchy_consistent if trainer.hierarchy_consistent is not None \
        else bool(getattr(config, "hierarchy_consistent", False))
    if getattr(config, "model_type", None) == "hbgl":
        def select(level_thresholds: Sequence[float]) -> np.ndarray:
            config.level_thresholds = list(level_thresholds)
            return np.asarray(trainer.predict(dev_dataset).predictions[0]) > 0.5
    else:
        config.level_thresholds = None
        config.decode_threshold = 0.5
        probabilities = np.asarray(trainer.predict(dev_dataset).predictions[1])
        select = probability_selector(probabilities, taxonomy, consistent)
    global_threshold, per_level, value = tune_thresholds(select, gold, taxonomy.depth, mode, objective, grid)
    config.decode_threshold = global_threshold
    config.level_thresholds = per_level
    logger.info("thresholds tuned on dev (%s, objective %s = %.4f): global %s, per level %s", mode, objective, value,
                global_threshold, per_level)
    return {"decode_threshold": global_threshold, "level_thresholds": per_level, "dev_objective": value}
