"""Every method switch of HBGLConfig and HPTConfig changes an output when flipped (a switch that cannot change
anything is a defect). Which value is right for each is checked against the clean-room references in
tests/reference/."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import padded_batch
from test_hbgl import DEPTH4, tiny_hbgl
from test_hpt import gold, tiny_hpt

from hbgl_hf import HBGLForHierarchicalClassification, LabelGraphPretrainer
from hbgl_hf.label_pretraining import sibling_group_keys
from hpt_hf import HPTForHierarchicalClassification
from htc_tools.taxonomy import Taxonomy

NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
IDS, MASK = padded_batch([7, 5, 4])
LABELS = gold(DEPTH4, ["a111", "x1"], ["c"], ["b12"])  # paths of depth 4, 1 and 3; "x" has two parents


def hbgl_global_loss(model: HBGLForHierarchicalClassification) -> torch.Tensor:
    masked = torch.ones(2, DEPTH4.num_labels, dtype=torch.bool)
    masked[1, ::2] = False
    return LabelGraphPretrainer(model).eval()(masked=masked)["loss"].detach()


def hbgl_local_loss(model: HBGLForHierarchicalClassification) -> torch.Tensor:
    torch.manual_seed(0)  # target masking draws in training mode
    return model(IDS, MASK, labels=LABELS).loss.detach()


def steer_decoding(model: HBGLForHierarchicalClassification) -> None:
    """Biases that make level 1 fire ("a"), level 2 fire nothing, level 3 fire "a11" and [SEP] fire at the
    third step: an empty level followed by a firing one."""
    offset = model.config.label_token_offset
    with torch.no_grad():
        bias = model.cls.bias
        bias[offset : offset + DEPTH4.num_labels] = -30.0
        bias[offset + DEPTH4.id("a")] = bias[offset + DEPTH4.id("a11")] = 30.0
        bias[model.config.sep_token_id] = -30.0


def hbgl_decode(model: HBGLForHierarchicalClassification) -> torch.Tensor:
    steer_decoding(model)
    out = model.eval().decode(IDS, MASK)
    return torch.cat([out.selected.float(), out.logits], dim=1)


def hbgl_decode_authors_stop(model: HBGLForHierarchicalClassification) -> torch.Tensor:
    """Under the authors' rule a [SEP] that fires at step 2 drops that step's labels and ends the path."""
    steer_decoding(model)
    with torch.no_grad():
        model.cls.bias[model.config.sep_token_id] = 0.0
        model.cls.decoder.weight[model.config.sep_token_id] = 0.0  # [SEP] scores exactly its bias
    model.eval()
    first = model.decode(IDS, MASK).selected
    with torch.no_grad():
        model.cls.bias[model.config.sep_token_id] = 30.0  # fires at every step: nothing is selected
    return torch.cat([first.float(), model.decode(IDS, MASK).selected.float()], dim=1)


def hbgl_from_encoder(tiny_encoder_dir: Path, tokenizer, **overrides: object) -> torch.Tensor:
    model = HBGLForHierarchicalClassification.from_encoder(
        str(tiny_encoder_dir), ["ball game", "music"], [[], []], tokenizer=tokenizer, **overrides)
    return model.bert.embeddings.word_embeddings.weight[model.label_columns].detach()


def hpt_train_loss(model: HPTForHierarchicalClassification) -> torch.Tensor:
    torch.manual_seed(0)  # MLM corruption and graph dropout draw in training mode
    return model.train()(IDS, MASK, labels=LABELS).loss.detach()


def hpt_eval(model: HPTForHierarchicalClassification) -> torch.Tensor:
    with torch.no_grad():
        model.cls.bias.uniform_(-1, 1)  # a non-zero MLM bias on the label rows (verbalizer_bias)
        out = model.eval()(IDS, MASK, labels=LABELS)
    return torch.cat([out.logits.flatten(), out.loss[None]])


def hpt_decode(model: HPTForHierarchicalClassification) -> torch.Tensor:
    with torch.no_grad():
        model.label_bias.copy_(torch.linspace(-0.5, 0.5, DEPTH4.num_labels))
    return model.eval().decode(IDS, MASK).selected


HBGL_SWITCHES: list[tuple[str, object, object, Callable, dict]] = [
    ("cpt_self_attention", True, False, hbgl_global_loss, {}),
    ("cpt_segment_id", 1, 0, hbgl_global_loss, {}),
    ("loss_columns", "level", "all", hbgl_local_loss, {"target_mask_prob": 0.0}),
    ("loss_reduction", "example", "batch", hbgl_local_loss, {"target_mask_prob": 0.0}),
    ("target_mask_prob", 0.5, 0.0, lambda m: hbgl_local_loss(m.train()), NO_DROPOUT),
    ("empty_level_input", "sep", "zero", hbgl_decode, {}),
    ("decoding", "paper", "stop_at_empty", hbgl_decode, {}),
    ("decoding", "paper", "authors", hbgl_decode_authors_stop, {}),
    ("decode_threshold", 0.5, 0.6, lambda m: m.eval().decode(IDS, MASK).selected, {}),
    ("hierarchy_consistent", False, True, hbgl_decode, {}),
]


@pytest.mark.parametrize(("field", "default", "other", "output", "extra"), HBGL_SWITCHES,
                         ids=[f"{s[0]}={s[2]}" for s in HBGL_SWITCHES])
def test_hbgl_switch_changes_an_output(field: str, default: object, other: object, output: Callable,
                                       extra: dict) -> None:
    assert getattr(tiny_hbgl(DEPTH4).config, field) == default  # the paper default
    base = output(tiny_hbgl(DEPTH4, **{**extra, field: default}))
    flipped = output(tiny_hbgl(DEPTH4, **{**extra, field: other}))
    assert not torch.equal(base, flipped)


def test_hbgl_target_mode_switch_changes_the_global_loss() -> None:
    """Eq. 4's sibling targets vs the authors' shifted lookup, on a taxonomy with sibling leaves."""
    siblings = Taxonomy.from_dict({"Root": ["B", "A"], "A": ["a1", "a2", "a3"], "B": ["b1", "b2"]})
    assert sibling_group_keys(siblings.parents, "intended") != sibling_group_keys(siblings.parents, "hbgl_shifted",
                                                                                  siblings.labels)
    masked = torch.ones(1, siblings.num_labels, dtype=torch.bool)
    losses = [LabelGraphPretrainer(tiny_hbgl(siblings, cpt_target_mode=mode)).eval()(masked=masked)["loss"].detach()
              for mode in ("intended", "hbgl_shifted")]
    assert not torch.equal(*losses)


def test_hbgl_mask_ratio_switch_changes_the_masks() -> None:
    """cpt_mask_ratio_max (Alg. 1's r_M; the authors' WOS/NYT runs keep 0.15) changes the late masks."""
    progress, seeds = torch.ones(64), torch.arange(64)
    grows = LabelGraphPretrainer(tiny_hbgl(DEPTH4)).draw_masks(progress, seeds)
    constant = LabelGraphPretrainer(tiny_hbgl(DEPTH4, cpt_mask_ratio_max=0.15)).draw_masks(progress, seeds)
    assert grows.float().mean() > constant.float().mean() + 0.15


def test_hbgl_label_init_switch(tiny_encoder_dir: Path, tokenizer) -> None:
    mean = hbgl_from_encoder(tiny_encoder_dir, tokenizer)
    total = hbgl_from_encoder(tiny_encoder_dir, tokenizer, label_init="sum")
    torch.testing.assert_close(total[0], 2 * mean[0])  # "ball game": two word pieces
    torch.testing.assert_close(total[1], mean[1])


HPT_SWITCHES: list[tuple[str, object, object, Callable]] = [
    ("template_text_sep", True, False, hpt_eval),
    ("zmlce_mode", "per_depth", "per_example_global", hpt_eval),
    ("graph_edges", "undirected", "parent_to_child", hpt_eval),
    ("graph_residual", "plain", "layer_norm", hpt_eval),
    ("verbalizer_bias", "label", "mlm_plus_label", hpt_eval),
    ("graph_layers", 1, 2, hpt_eval),
    ("mlm_eligible", "text", "ordinary", hpt_train_loss),
    ("mlm_loss_weight", 1.0, 0.5, hpt_train_loss),
    ("mlm_probability", 0.15, 0.5, hpt_train_loss),
    ("graph_dropout", None, 0.5, hpt_train_loss),
    ("decode_threshold", 0.5, 0.6, hpt_decode),
    ("hierarchy_consistent", False, True, hpt_decode),
]


@pytest.mark.parametrize(("field", "default", "other", "output"), HPT_SWITCHES,
                         ids=[f"{s[0]}={s[2]}" for s in HPT_SWITCHES])
def test_hpt_switch_changes_an_output(field: str, default: object, other: object, output: Callable) -> None:
    assert getattr(tiny_hpt(DEPTH4).config, field) == default  # the paper default
    assert not torch.equal(output(tiny_hpt(DEPTH4, **{field: default})), output(tiny_hpt(DEPTH4, **{field: other})))


def test_hpt_label_init_switch(tiny_encoder_dir: Path, tokenizer) -> None:
    rows = []
    for init in ("mean", "mean_with_special"):
        model = HPTForHierarchicalClassification.from_encoder(str(tiny_encoder_dir), ["music"], [[]],
                                                              tokenizer=tokenizer, label_init=init)
        rows.append(model.bert.embeddings.word_embeddings.weight[model.config.label_token_offset].detach())
    assert not torch.equal(*rows)


def test_hpt_positive_score_is_selected_in_bf16() -> None:
    """§4.2: a label is predicted when its score > 0. In bf16, sigmoid(1e-3) rounds to 0.5 exactly."""
    model = tiny_hpt(DEPTH4).eval()
    with torch.no_grad():
        model.cls.decoder.weight.zero_()  # every score is its bias
        model.label_bias.fill_(-1.0)
        model.label_bias[DEPTH4.id("b")] = 1e-3
    model = model.to(torch.bfloat16)
    out = model.decode(IDS, MASK)
    assert torch.sigmoid(out.logits[0, DEPTH4.id("b")]) == 0.5  # what the old rule compared
    assert out.selected[:, DEPTH4.id("b")].all() and out.selected.sum() == len(IDS)
