"""Dev-tuned decision thresholds (htc_tools.threshold_tuning), per-level thresholds in decode() of HBGL, HPT and
embed_lr, the prior-bias start of HBGL's and HPT's label scores, and the head learning rate."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hbgl_hf import HBGLForHierarchicalClassification
from hbgl_hf.thresholds import score_thresholds
from hpt_hf import HPTForHierarchicalClassification
from htc_tools.embed_lr import EmbedLRForHierarchicalClassification
from htc_tools.taxonomy import Taxonomy
from htc_tools.threshold_tuning import probability_selector, tune_thresholds
from htc_tools.training import init_label_score_bias, label_prior_logits

REPO = Path(__file__).resolve().parents[1]
CLASSES = {"hbgl": HBGLForHierarchicalClassification, "hpt": HPTForHierarchicalClassification,
           "embed_lr": EmbedLRForHierarchicalClassification}


def two_level_case() -> tuple[Taxonomy, np.ndarray, np.ndarray]:
    """Level 1 positives score 0.8, negatives 0.6; level 2 positives 0.3, negatives 0.1: no single threshold
    separates both levels, one per level does."""
    taxonomy = Taxonomy.from_parents(["a", "b", "a1", "b1"], [[], [], [0], [1]])
    gold = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 0, 0], [0, 1, 0, 0]])
    probabilities = np.where(gold > 0, 0.8, 0.6)
    probabilities[:, 2:] = np.where(gold[:, 2:] > 0, 0.3, 0.1)
    return taxonomy, gold, probabilities


def f1_by_brute_force(gold: np.ndarray, probabilities: np.ndarray, levels: np.ndarray, thresholds) -> float:
    pred = probabilities > np.asarray(thresholds)[levels]
    tp, fp, fn = (gold & pred).sum(), (~gold & pred).sum(), (gold & ~pred).sum()
    return 2 * tp / (2 * tp + fp + fn)


def test_tuning_picks_the_f1_maximising_thresholds() -> None:
    taxonomy, gold, probabilities = two_level_case()
    select = probability_selector(probabilities, taxonomy)
    levels = np.asarray(taxonomy.levels) - 1
    grid = [round(0.05 * i, 2) for i in range(1, 20)]
    best_global, per_level, value = tune_thresholds(select, gold, 2, "per_level", "micro_f1", grid)
    brute = {t: f1_by_brute_force(gold > 0, probabilities, levels, [t, t]) for t in grid}
    assert brute[best_global] == max(brute.values()) and best_global == 0.6  # ties: the one nearest 0.5
    assert per_level == [0.6, 0.25] and value == 1.0  # each level separated: the nearest to 0.5 of its band
    assert tune_thresholds(select, gold, 2, "global", "micro_f1", grid)[1] is None
    with pytest.raises(ValueError, match="per_level"):
        tune_thresholds(select, gold, 2, "per_layer")


def test_consistent_selection_drops_children_of_unselected_parents() -> None:
    taxonomy, _, probabilities = two_level_case()
    free = probability_selector(probabilities, taxonomy)([0.7, 0.05])
    consistent = probability_selector(probabilities, taxonomy, hierarchy_consistent=True)([0.7, 0.05])
    assert free[:, 2:].all() and np.array_equal(consistent[:, 2:], free[:, :2] & free[:, 2:])


def test_score_thresholds_explicit_global_and_per_level() -> None:
    class Config:
        decode_threshold, level_thresholds = 0.5, [0.5, 0.9]

    levels = torch.tensor([1, 1, 2])
    assert score_thresholds(Config, levels, 0.5) == (0.0, 0.0)  # an explicit threshold wins
    _, per_label = score_thresholds(Config, levels)
    torch.testing.assert_close(per_label, torch.tensor([0.0, 0.0, float(np.log(9))]))
    Config.level_thresholds = [0.5]
    with pytest.raises(ValueError, match="2 levels"):
        score_thresholds(Config, levels)
    Config.level_thresholds = [0.5, 1.0]
    with pytest.raises(ValueError, match=r"level_thresholds\[1\]"):
        score_thresholds(Config, levels)


@pytest.mark.parametrize("model_type", ["hbgl", "hpt", "embed_lr"])
def test_decode_honours_per_level_thresholds(model_type: str, tiny_encoder_dir: Path, toy_taxonomy,
                                             tokenizer) -> None:
    """Raising the deepest level's threshold removes that level's labels and leaves the other levels' selection."""
    torch.manual_seed(0)
    model = CLASSES[model_type].from_encoder(str(tiny_encoder_dir), list(toy_taxonomy.labels),
                                             [list(p) for p in toy_taxonomy.parents]).eval()
    with torch.no_grad():  # every label scores about +4
        if model_type == "hbgl":
            model.cls.bias[model.config.label_token_offset:][:toy_taxonomy.num_labels] = 4.0
        elif model_type == "hpt":
            model.label_bias.fill_(4.0)
        else:
            model.classifier.bias.fill_(4.0)
    batch = tokenizer(["the team won the ball game", "a gene in the cell"], padding=True, return_tensors="pt")
    levels = torch.tensor(toy_taxonomy.levels)
    model.config.level_thresholds = [0.5, 0.5, 0.5]
    low = model.decode(**batch).selected
    model.config.level_thresholds = [0.5, 0.5, 1 - 1e-6]
    high = model.decode(**batch).selected
    assert low[:, levels == 3].any() and not high[:, levels == 3].any()
    assert torch.equal(low[:, levels < 3], high[:, levels < 3])
    assert torch.equal(model.decode(**batch, threshold=0.5).selected, low)  # an explicit threshold: global


@pytest.mark.parametrize("config", [{"model_type": "hbgl"}, {"model_type": "hpt"},
                                    {"model_type": "hpt", "verbalizer_bias": "mlm_plus_label"}])
def test_label_score_bias_starts_at_the_priors(config: dict, tiny_encoder_dir: Path, toy_taxonomy) -> None:
    model_type = config.pop("model_type")
    model = CLASSES[model_type].from_encoder(str(tiny_encoder_dir), list(toy_taxonomy.labels),
                                             [list(p) for p in toy_taxonomy.parents], **config)
    rows = slice(model.config.label_token_offset, model.config.label_token_offset + toy_taxonomy.num_labels)
    with torch.no_grad():
        model.cls.bias[rows] = torch.linspace(-1, 1, toy_taxonomy.num_labels)  # a pretrained MLM bias
    labels = np.eye(toy_taxonomy.num_labels)[[0, 0, 1, 3]]
    priors = label_prior_logits(labels).float()
    init_label_score_bias(model, priors)
    bias = model.cls.bias[rows] if model_type == "hbgl" else model.label_bias + (
        model.cls.bias[rows] if config else 0)
    torch.testing.assert_close(bias.detach(), priors)


def test_cli_switch_sets_the_prior_start_only_when_asked(tiny_encoder_dir: Path, toy_taxonomy, tokenizer) -> None:
    sys.path.insert(0, str(REPO / "examples"))
    from run_hierarchical_classification import ModelArguments, build_model

    labels = np.eye(toy_taxonomy.num_labels)[[0, 0, 1, 3]].tolist()
    paper = build_model(ModelArguments(model_type="hpt"), toy_taxonomy, tokenizer, str(tiny_encoder_dir), labels)
    prior = build_model(ModelArguments(model_type="hpt", label_score_bias_init="prior"), toy_taxonomy, tokenizer,
                        str(tiny_encoder_dir), labels)
    torch.testing.assert_close(prior.label_bias.detach(), label_prior_logits(labels).float())
    assert not torch.allclose(paper.label_bias, prior.label_bias)


def test_head_learning_rate_applies_outside_the_encoder(tiny_encoder_dir: Path, toy_taxonomy, tmp_path: Path) -> None:
    from transformers import TrainingArguments

    from htc_tools.trainer import HierarchicalTrainer

    model = HPTForHierarchicalClassification.from_encoder(str(tiny_encoder_dir), list(toy_taxonomy.labels),
                                                          [list(p) for p in toy_taxonomy.parents])
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-5, report_to="none", use_cpu=True)
    optimizer = HierarchicalTrainer(model=model, args=args, head_learning_rate=1e-3).create_optimizer()
    by_lr = {}
    for group in optimizer.param_groups:
        by_lr.setdefault(group["lr"], set()).update(id(p) for p in group["params"])
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[i].split(".")[0] for i in by_lr[1e-3]} == {"graph", "label_bias", "cls"}
    assert {names[i].split(".")[0] for i in by_lr[1e-5]} == {"bert"}
    plain = HierarchicalTrainer(model=model, args=args).create_optimizer()
    assert {g["lr"] for g in plain.param_groups} == {1e-5}
