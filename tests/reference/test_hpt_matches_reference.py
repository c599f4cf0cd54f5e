"""The package's HPT (hpt_hf) against the clean-room reference (tests/reference/hpt_reference.py).

Tiny random models (tests/test_hpt.py's ``tiny_hpt``, dropout 0): prompts, graph, logits and losses within
1e-5, decoded label sets identical, under the paper defaults and under the code switches. The reference takes
the package model's own parameters (``HPTParams``), so any difference is a difference of the computation.
"""

from __future__ import annotations

import math

import hpt_reference as ref
import pytest
import torch
from compare_helpers import TOY, one_thread, parents_of, taxonomy  # noqa: F401 (one_thread: autouse fixture)
from conftest import padded_batch
from test_hpt import DEPTH4, tiny_hpt

from hpt_hf import HPTForHierarchicalClassification
from hpt_hf.graph import hierarchy_adjacency
from hpt_hf.template import build_prompt_inputs, template_token_ids
from htc_tools.taxonomy import Taxonomy

ATOL = 1e-5  # the tolerance for losses and logits
MARGIN = 1e-4  # every score a selection was decided on lies at least this far from the cut-off (well-posed cases)
SEED = 123  # torch seed before a training forward: the package's MLM corruption is re-drawn from it




# ------------------------------------------------------------------ helpers


def hpt_model(tax: Taxonomy, max_positions: int = 48, **overrides: object) -> HPTForHierarchicalClassification:
    """``tiny_hpt`` without dropout (graph dropout included), in eval mode, with a random MLM decoder bias and random
    graph parameters (the GAT bias starts at zero, the LayerNorm at identity)."""
    settings = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, **overrides}
    model = tiny_hpt(tax, max_positions, **settings).eval()
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        model.cls.bias.normal_(0.0, 0.5, generator=g)
        for p in model.graph.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g))
    return model


def params(model: HPTForHierarchicalClassification) -> ref.HPTParams:
    """The package model's parameters handed to the reference (the decoder is tied to the word embeddings)."""
    c = model.config
    layers = []
    for layer in model.graph.layers:
        norm = layer.layer_norm
        layers.append({"weight": layer.linear.weight, "att_src": layer.attention_source,
                       "att_dst": layer.attention_target, "bias": layer.bias,
                       "ln_weight": getattr(norm, "weight", None), "ln_bias": getattr(norm, "bias", None)})
    return ref.HPTParams(
        bert=model.bert, word_embeddings=model.bert.embeddings.word_embeddings.weight, transform=model.cls.transform,
        bias=model.cls.bias, label_bias=model.label_bias, graph_layers=layers, label_offset=c.label_token_offset,
        cls_id=c.cls_token_id, sep_id=c.sep_token_id, mask_id=c.mask_token_id, pad_id=c.pad_token_id or 0,
    )


def graph_switches(model: HPTForHierarchicalClassification) -> dict:
    """The reference's ``directed`` / ``residual`` arguments for the model's config."""
    return {"directed": model.config.graph_edges == "parent_to_child", "residual": model.config.graph_residual}


def reference_scores(model: HPTForHierarchicalClassification, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    c = model.config
    with torch.no_grad():
        return ref.label_scores(params(model), c.label_parents, ids, mask, c.template_text_sep,
                                c.max_position_embeddings, c.verbalizer_bias, **graph_switches(model))


def package_prompts(model: HPTForHierarchicalClassification, ids: torch.Tensor, mask: torch.Tensor) -> tuple:
    """``build_prompt_inputs`` as the model calls it: (prompt_ids, prompt_mask, pred_positions, text_mask)."""
    c = model.config
    template = torch.tensor(template_token_ids(c.virtual_token_ids, c.pred_token_id, c.sep_token_id))
    return build_prompt_inputs(ids, mask, template, c.max_position_embeddings, c.sep_token_id, c.pad_token_id or 0,
                               keep_text_sep=c.template_text_sep)


def gold(tax: Taxonomy, *leaf_sets: list[str]) -> torch.Tensor:
    """Ancestor-closed multi-hot rows, one per set of leaf names (an empty set: no label at all)."""
    y = torch.zeros(len(leaf_sets), tax.num_labels)
    for row, leaves in enumerate(leaf_sets):
        y[row, sorted(tax.ancestor_closure([tax.id(n) for n in leaves]))] = 1
    return y


def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded texts (one of them only ``[CLS] [SEP]``) and labels: two paths of different lengths, the DAG label
    "x1" (x under a1 and b1), no label at all, a short path plus a top-level leaf."""
    ids, mask = padded_batch([7, 4, 12, 2], seed=3)
    return ids, mask, gold(DEPTH4, ["a111", "a2"], ["x1"], [], ["b12", "c"])


def close(a: torch.Tensor, b: torch.Tensor, atol: float = ATOL) -> bool:
    return (a.detach().float() - b.detach().float()).abs().max().item() <= atol


# ------------------------------------------------------------------ template
@pytest.mark.parametrize("max_length", [48, 16, 12, 11])
@pytest.mark.parametrize("text_sep", [True, False])
def test_template_matches_reference(text_sep: bool, max_length: int) -> None:
    """Prompt ids, mask, [PRED] positions and kept text of ``build_prompt_inputs`` equal the reference's
    ``build_template`` / ``build_prompt_batch`` / ``pred_positions`` for template_text_sep True|False, with and
    without truncation (max_length 16: the 7-token text just fits; 12 and 11: words cut from the end)."""
    model = hpt_model(DEPTH4, template_text_sep=text_sep)
    c = model.config
    ids, mask, _ = batch()
    template = torch.tensor(template_token_ids(c.virtual_token_ids, c.pred_token_id, c.sep_token_id))
    prompt_ids, prompt_mask, pred_positions, text_mask = build_prompt_inputs(
        ids, mask, template, max_length, c.sep_token_id, 0, keep_text_sep=text_sep)
    ref_ids, ref_mask = ref.build_prompt_batch(params(model), c.label_parents, ids, mask, text_sep, max_length)
    assert torch.equal(prompt_ids, ref_ids)
    assert torch.equal(prompt_mask, ref_mask)
    for b in range(ids.shape[0]):
        prompt = ref_ids[b, : int(ref_mask[b].sum())].tolist()
        assert len(prompt) <= max_length
        assert pred_positions[b].tolist() == ref.pred_positions(prompt, c.pred_token_id)
        words = ref.text_word_count(prompt, c.virtual_token_ids[0], text_sep)
        assert text_mask[b].nonzero().flatten().tolist() == list(range(1 + words + int(text_sep)))


# ------------------------------------------------------------------ hierarchy injection graph
@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("name", ["depth4", "toy", "rcv1", "wos", "nyt"])
def test_adjacency_matches_reference(name: str, directed: bool) -> None:
    """``hierarchy_adjacency`` (labels + one virtual node per depth) equals ``graph_adjacency`` for graph_edges
    undirected|parent_to_child, on a DAG and the real taxonomies."""
    tax = taxonomy(name)
    got = hierarchy_adjacency(parents_of(tax), list(tax.levels), directed=directed)
    assert torch.equal(got, ref.graph_adjacency(parents_of(tax), directed))


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("residual", ["plain", "layer_norm"])
@pytest.mark.parametrize("edges", ["undirected", "parent_to_child"])
@pytest.mark.parametrize("name", ["depth4", "toy"])
def test_graph_output_matches_reference(name: str, edges: str, residual: str, layers: int) -> None:
    """The GAT stack (``model.graph``) on the label-word + virtual-token rows equals ``graph_forward`` for
    graph_edges x graph_residual x graph_layers 1|2."""
    tax = taxonomy(name)
    model = hpt_model(tax, graph_edges=edges, graph_residual=residual, graph_layers=layers)
    p = params(model)
    nodes = ref.graph_node_features(p, parents_of(tax))
    directed = edges == "parent_to_child"
    got = model.graph(nodes, hierarchy_adjacency(parents_of(tax), list(tax.levels), directed=directed))
    expected = ref.graph_forward(p, nodes, ref.graph_adjacency(parents_of(tax), directed), residual)
    assert close(got, expected)
    assert not close(got, nodes, atol=1e-3)  # the graph really changes the rows


# ------------------------------------------------------------------ logits and losses
CODE = {"template_text_sep": False, "zmlce_mode": "per_example_global", "mlm_eligible": "ordinary",
        "graph_edges": "parent_to_child", "graph_residual": "layer_norm", "verbalizer_bias": "mlm_plus_label"}
SWITCHES = {
    "paper": {},
    "authors_code": CODE,
    "no_text_sep": {"template_text_sep": False},
    "parent_to_child": {"graph_edges": "parent_to_child"},
    "layer_norm": {"graph_residual": "layer_norm"},
    "mlm_plus_label": {"verbalizer_bias": "mlm_plus_label"},
    "two_graph_layers": {"graph_layers": 2},
    "global_zmlce": {"zmlce_mode": "per_example_global"},
    "truncated_paper": {"max_positions": 16},
    "truncated_code": {**CODE, "max_positions": 15},
}


def model_for(switches: str, tax: Taxonomy = DEPTH4, **extra: object) -> HPTForHierarchicalClassification:
    settings = {**SWITCHES[switches], **extra}
    return hpt_model(tax, settings.pop("max_positions", 48), **settings)


@pytest.mark.parametrize("switches", list(SWITCHES))
def test_logits_and_classification_loss_match_reference(switches: str) -> None:
    """Eval forward with labels: logits equal ``label_scores`` and ``loss`` / ``classification_loss`` equal
    ``classification_loss`` (ZMLCE per_depth or per_example_global; no MLM in eval), under the paper defaults, the
    authors' code switches, each switch alone, two GAT layers and truncated texts."""
    model = model_for(switches)
    c = model.config
    ids, mask, labels = batch()
    out = model(ids, mask, labels=labels)
    expected_scores = reference_scores(model, ids, mask)
    assert close(out.logits, expected_scores)
    expected_loss = ref.classification_loss(expected_scores, labels, c.label_parents, c.zmlce_mode)
    assert abs(out.loss.item() - expected_loss.item()) <= ATOL
    assert abs(out.classification_loss.item() - expected_loss.item()) <= ATOL
    assert out.mlm_loss is None


@pytest.mark.parametrize("mode", ["per_depth", "per_example_global"])
def test_logits_and_loss_on_a_dag_match_reference(mode: str) -> None:
    """The toy DAG ("biochem" under two parents of the same depth): logits and ZMLCE equal the reference's."""
    model = hpt_model(TOY, zmlce_mode=mode)
    ids, mask = padded_batch([6, 9, 4], seed=5)
    labels = gold(TOY, ["biochem"], [], ["ball", "music"])
    out = model(ids, mask, labels=labels)
    expected_scores = reference_scores(model, ids, mask)
    assert close(out.logits, expected_scores)
    expected = ref.classification_loss(expected_scores, labels, parents_of(TOY), mode)
    assert abs(out.loss.item() - expected.item()) <= ATOL


@pytest.mark.parametrize("eligible", ["text", "ordinary"])
@pytest.mark.parametrize("switches", ["paper", "no_text_sep", "truncated_paper", "truncated_code"])
def test_mlm_eligible_positions_match_reference(switches: str, eligible: str) -> None:
    """With mlm_probability 1 every eligible position is chosen: the package's chosen positions equal the reference's
    ``mlm_eligible`` (text: the text's words only; ordinary: every non-pad id below the label rows, [CLS] and [SEP]s
    included), for both prompt layouts and truncated texts."""
    model = model_for(switches, mlm_eligible=eligible, mlm_probability=1.0)
    c = model.config
    ids, mask, _ = batch()
    prompt_ids, prompt_mask, _, text_mask = package_prompts(model, ids, mask)
    _, chosen = model._mlm_corruption(prompt_ids, prompt_mask, text_mask)
    for b in range(ids.shape[0]):
        prompt = prompt_ids[b].tolist()
        words = ref.text_word_count(prompt, c.virtual_token_ids[0], c.template_text_sep)
        expected = ref.mlm_eligible(prompt, words, c.label_token_offset, c.pad_token_id or 0, eligible)
        assert chosen[b].tolist() == expected, f"example {b}"


def test_mlm_eligible_positions_of_a_sentence_pair_match_reference() -> None:
    """A tokenised sentence pair ``[CLS] a b [SEP] c d [SEP]`` under mlm_eligible="text": the chosen positions (all of
    the eligible ones at mlm_probability 1) equal the reference's ``mlm_eligible``."""
    model = hpt_model(DEPTH4, mlm_probability=1.0)
    c = model.config
    ids = torch.tensor([[2, 10, 11, 3, 12, 13, 3]])
    prompt_ids, prompt_mask, _, text_mask = package_prompts(model, ids, torch.ones_like(ids))
    _, chosen = model._mlm_corruption(prompt_ids, prompt_mask, text_mask)
    prompt = prompt_ids[0].tolist()
    words = ref.text_word_count(prompt, c.virtual_token_ids[0], True)
    specials = (c.cls_token_id, c.sep_token_id)
    assert chosen[0].tolist() == ref.mlm_eligible(prompt, words, c.label_token_offset, 0, "text", specials)


def long_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ids, mask = padded_batch([30, 22, 37, 14], seed=6)
    return ids, mask, gold(DEPTH4, ["a111", "a2"], ["x1"], [], ["b12", "c"])


@pytest.mark.parametrize("eligible", ["text", "ordinary"])
def test_mlm_corruption_follows_the_reference_rule(eligible: str) -> None:
    """The package's 80/10/10 corruption, re-drawn from the same seed (uniform ``u`` per position), equals
    ``corrupt_prompt``: chosen iff eligible and u < p; [MASK] for u/p < 0.8, the original id for 0.8 <= u/p < 0.9,
    a random base-vocabulary id (not a special token, not a label row) above; all three occur."""
    model = hpt_model(DEPTH4, mlm_eligible=eligible)
    c = model.config
    ids, mask, _ = long_batch()
    prompt_ids, prompt_mask, _, text_mask = package_prompts(model, ids, mask)
    torch.manual_seed(SEED)
    corrupted, chosen = model._mlm_corruption(prompt_ids, prompt_mask, text_mask)
    torch.manual_seed(SEED)
    uniforms = torch.rand(prompt_ids.shape)
    actions = set()
    for b in range(ids.shape[0]):
        prompt = prompt_ids[b].tolist()
        words = ref.text_word_count(prompt, c.virtual_token_ids[0], c.template_text_sep)
        eligible_b = ref.mlm_eligible(prompt, words, c.label_token_offset, 0, eligible)
        ref_ids, ref_chosen = ref.corrupt_prompt(prompt, eligible_b, uniforms[b].tolist(), corrupted[b].tolist(),
                                                 c.mask_token_id, c.mlm_probability)
        assert chosen[b].tolist() == ref_chosen
        assert corrupted[b].tolist() == ref_ids
        for position, u in enumerate(uniforms[b].tolist()):
            if eligible_b[position]:
                action = ref.corruption_rule(u, c.mlm_probability)
                actions.add(action)
                if action == "random":
                    assert c.mask_token_id < corrupted[b, position] < c.label_token_offset
    assert actions == {"none", "mask", "keep", "random"}


TRAINING_CASES = [("paper", 1.0), ("authors_code", 1.0), ("no_text_sep", 0.5), ("truncated_code", 2.0)]


@pytest.mark.parametrize("eligible", ["text", "ordinary"])
@pytest.mark.parametrize(("switches", "weight"), TRAINING_CASES)
def test_training_losses_match_reference(switches: str, weight: float, eligible: str) -> None:
    """Train-mode forward (dropout 0) given the package's MLM corruption (the same seed): ``mlm_loss`` equals the
    reference's ``mlm_loss`` (CE over the whole extended vocabulary at the chosen positions), ``logits`` and
    ``classification_loss`` equal ``label_scores_from_prompts`` / ``classification_loss`` on the corrupted prompts
    (one forward serves both losses, as the authors' code), and ``loss`` equals ``total_loss`` with mlm_loss_weight."""
    model = model_for(switches, mlm_eligible=eligible, mlm_loss_weight=weight)
    c = model.config
    model.train()
    ids, mask, labels = long_batch()
    prompt_ids, prompt_mask, _, text_mask = package_prompts(model, ids, mask)
    torch.manual_seed(SEED)
    corrupted, chosen = model._mlm_corruption(prompt_ids, prompt_mask, text_mask)
    assert chosen.any() and not torch.equal(corrupted, prompt_ids)
    torch.manual_seed(SEED)
    out = model(ids, mask, labels=labels)
    p, graph = params(model), graph_switches(model)
    expected_mlm = ref.mlm_loss(p, c.label_parents, corrupted, prompt_ids, chosen, prompt_mask, **graph)
    expected_scores = ref.label_scores_from_prompts(p, c.label_parents, corrupted, prompt_mask, c.verbalizer_bias,
                                                    **graph)
    expected_cls = ref.classification_loss(expected_scores, labels, c.label_parents, c.zmlce_mode)
    assert abs(out.mlm_loss.item() - expected_mlm.item()) <= ATOL
    assert close(out.logits, expected_scores)
    assert abs(out.classification_loss.item() - expected_cls.item()) <= ATOL
    assert abs(out.loss.item() - ref.total_loss(expected_cls, expected_mlm, weight).item()) <= ATOL


def test_training_without_mlm_matches_reference() -> None:
    """mlm_loss_weight 0 in training: no corruption, the loss is the classification loss of the clean prompts."""
    model = hpt_model(DEPTH4, mlm_loss_weight=0.0)
    model.train()
    ids, mask, labels = long_batch()
    out = model(ids, mask, labels=labels)
    expected = ref.classification_loss(reference_scores(model, ids, mask), labels, model.config.label_parents,
                                       "per_depth")
    assert out.mlm_loss is None
    assert abs(out.loss.item() - expected.item()) <= ATOL


@pytest.mark.parametrize("label_init", ["mean", "mean_with_special"])
def test_from_encoder_model_matches_reference(tiny_encoder_dir, label_init: str) -> None:
    """A model built with ``from_encoder`` (label words from the names' word pieces, mean or mean with [CLS]/[SEP];
    transform and bias from the checkpoint's MLM head) gives the reference's logits and classification loss."""
    model = HPTForHierarchicalClassification.from_encoder(
        str(tiny_encoder_dir), list(TOY.labels), parents_of(TOY), label_init=label_init,
    ).eval()
    ids, mask = padded_batch([6, 9, 4], seed=5)
    labels = gold(TOY, ["biochem"], [], ["ball", "music"])
    out = model(ids, mask, labels=labels)
    expected_scores = reference_scores(model, ids, mask)
    assert close(out.logits, expected_scores)
    expected = ref.classification_loss(expected_scores, labels, parents_of(TOY), "per_depth")
    assert abs(out.loss.item() - expected.item()) <= ATOL


# ------------------------------------------------------------------ decoding
def spread_label_bias(model: HPTForHierarchicalClassification) -> None:
    """Label biases from -1.5 to 1.5, so that predictions are mixed at thresholds 0.5 and 0.7."""
    with torch.no_grad():
        model.label_bias.copy_(torch.linspace(-1.5, 1.5, model.config.num_labels).flip(0))


@pytest.mark.parametrize("threshold", [0.5, 0.7, "config-0.7"])
@pytest.mark.parametrize("switches", ["paper", "authors_code"])
def test_decode_matches_reference(switches: str, threshold: float | str) -> None:
    """``model.decode`` selects ``ref.decode`` of the reference's scores (score > logit(threshold)) at 0.5 and 0.7
    (given to decode, or as config.decode_threshold), and its logits equal the reference's scores."""
    from_config = threshold == "config-0.7"
    value = 0.7 if from_config else threshold
    model = model_for(switches, decode_threshold=value) if from_config else model_for(switches)
    spread_label_bias(model)
    ids, mask, _ = batch()
    out = model.decode(ids, mask) if from_config else model.decode(ids, mask, threshold=value)
    scores = reference_scores(model, ids, mask)
    cutoff = math.log(value / (1 - value))
    assert (scores - cutoff).abs().min().item() > MARGIN  # no selection hinges on rounding
    assert close(out.logits, scores)
    expected = ref.decode(scores, value)
    assert [set(row.nonzero().flatten().tolist()) for row in out.selected] == expected
    assert 0 < int(out.selected.sum()) < out.selected.numel()


def test_decode_bf16_selects_a_small_positive_score() -> None:
    """In bf16 a label whose score is +1e-3 (its word row zero, its bias 1e-3) is selected, as by the reference's
    ``decode`` (a score comparison); its bf16 probability rounds to exactly 0.5, so comparing probabilities would
    lose it. The other labels' bf16 logits stay near the reference's."""
    model = hpt_model(DEPTH4).to(torch.bfloat16)
    spread_label_bias(model)
    label = DEPTH4.id("b1")
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight[model.config.label_token_offset + label] = 0
        model.label_bias[label] = 1e-3
    ids, mask, _ = batch()
    out = model.decode(ids, mask)
    assert out.logits.dtype == torch.bfloat16
    assert torch.all(out.logits[:, label] == torch.tensor(1e-3, dtype=torch.bfloat16))
    assert torch.all(torch.sigmoid(out.logits[:, label]) == 0.5)  # rounded probability: not > 0.5
    assert out.selected[:, label].all()
    assert [set(row.nonzero().flatten().tolist()) for row in out.selected] == ref.decode(out.logits.float())
    scores = reference_scores(model, ids, mask)
    assert all(label in row for row in ref.decode(scores.float()))
    assert close(out.logits, scores, atol=0.05)
