from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_BASE_VOCAB, keyword_task_micro_f1, padded_batch, remote_logits, shared_taxonomy

from hbgl_hf import HBGLConfig
from hpt_hf import HPTConfig, HPTForHierarchicalClassification
from hpt_hf.graph import HierarchyInjection, hierarchy_adjacency
from hpt_hf.losses import zmlce
from hpt_hf.template import build_prompt_inputs, template_token_ids
from htc_tools.taxonomy import Taxonomy, load_taxonomy

BASE_VOCAB = TINY_BASE_VOCAB
CLS, SEP, MASK = 2, 3, 4
DEPTH4 = Taxonomy.from_dict({
    "Root": ["a", "b", "c"], "a": ["a1", "a2"], "b": ["b1"], "a1": ["a11", "x"], "b1": ["x", "b12"],
    "a11": ["a111"], "x": ["x1"],
})


def tiny_hpt(tax: Taxonomy, max_positions: int = 48, **overrides: object) -> HPTForHierarchicalClassification:
    config = HPTConfig(
        vocab_size=BASE_VOCAB + tax.num_labels + tax.depth + 1, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=max_positions,
        id2label=dict(enumerate(tax.labels)), label_parents=[list(p) for p in tax.parents],
        label_token_offset=BASE_VOCAB, cls_token_id=CLS, sep_token_id=SEP, mask_token_id=MASK, **overrides,
    )
    torch.manual_seed(0)
    return HPTForHierarchicalClassification(config)


def gold(tax: Taxonomy, *leaf_sets: list[str]) -> torch.Tensor:
    y = torch.zeros(len(leaf_sets), tax.num_labels)
    for row, leaves in enumerate(leaf_sets):
        y[row, sorted(tax.ancestor_closure([tax.id(n) for n in leaves]))] = 1
    return y


# ------------------------------------------------------------------ ZMLCE against the closed form
def closed_form_zmlce(s: np.ndarray, y: np.ndarray) -> float:
    """log(1 + sum_neg e^s) + log(1 + sum_pos e^-s), written out."""
    return math.log(1 + sum(math.exp(v) for v, t in zip(s, y, strict=True) if not t)) + \
        math.log(1 + sum(math.exp(-v) for v, t in zip(s, y, strict=True) if t))


@pytest.mark.parametrize("mode", ["per_depth", "per_example_global"])
def test_zmlce_equals_the_closed_form(mode: str) -> None:
    levels = np.array([1, 1, 2, 2, 2, 3])
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(4, 6, generator=g, dtype=torch.float64) * 3
    targets = torch.tensor([[1, 0, 1, 0, 0, 1], [0, 0, 0, 0, 0, 0], [0, 1, 0, 1, 1, 0], [1, 0, 0, 0, 0, 0.]],
                           dtype=torch.float64)  # row 1: no positive label at all; row 3: depths without one
    groups = [levels == d for d in (1, 2, 3)] if mode == "per_depth" else [levels > 0]
    expected = np.mean([sum(closed_form_zmlce(s[m], y[m]) for m in groups)
                        for s, y in zip(scores.numpy(), targets.numpy(), strict=True)])
    got = zmlce(scores, targets, torch.tensor(np.stack(groups)))
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_model_loss_is_zmlce_of_its_logits_per_depth_and_global() -> None:
    y = gold(DEPTH4, ["a111"], ["b"], ["x1", "a2"])
    ids, mask = padded_batch([7, 4, 9])
    losses = {}
    for mode in ("per_depth", "per_example_global"):
        model = tiny_hpt(DEPTH4, zmlce_mode=mode).eval()  # eval: no MLM corruption, loss = ZMLCE only
        out = model(ids, mask, labels=y)
        s, levels = out.logits.double().detach().numpy(), np.array(DEPTH4.levels)
        groups = [levels == d for d in range(1, 5)] if mode == "per_depth" else [levels > 0]
        expected = np.mean([sum(closed_form_zmlce(r[m], t[m]) for m in groups)
                            for r, t in zip(s, y.numpy(), strict=True)])
        assert out.loss.item() == pytest.approx(expected, rel=1e-5)
        losses[mode] = out.loss.item()
    assert losses["per_depth"] != pytest.approx(losses["per_example_global"], rel=1e-3)


# ------------------------------------------------------------------ GAT locality
def test_adjacency_keeps_every_parent_edge_and_links_virtual_nodes_by_depth(toy_taxonomy: Taxonomy) -> None:
    tax = toy_taxonomy
    a = hierarchy_adjacency([list(p) for p in tax.parents], tax.levels)
    biochem, chem, bio = tax.id("biochem"), tax.id("chemistry"), tax.id("biology")
    v3 = tax.num_labels + 2
    assert {j for j in range(len(a)) if a[biochem, j]} == {biochem, chem, bio, v3}
    assert {j for j in range(len(a)) if a[v3, j]} == {v3} | {i for i, lv in enumerate(tax.levels) if lv == 3}
    directed = hierarchy_adjacency([list(p) for p in tax.parents], tax.levels, directed=True)
    assert {j for j in range(len(a)) if directed[v3, j]} == {v3}  # the code: a virtual node hears only itself
    assert {j for j in range(len(a)) if directed[chem, j]} == {chem, tax.id("science"), tax.num_labels + 1}


@pytest.mark.parametrize("directed", [False, True])
def test_gat_update_depends_only_on_graph_neighbours(directed: bool) -> None:
    tax = load_taxonomy(shared_taxonomy("raw/rcv1.taxonomy"))
    adjacency = hierarchy_adjacency([list(p) for p in tax.parents], tax.levels, directed=directed)
    torch.manual_seed(0)
    graph = HierarchyInjection(16, num_layers=1, dropout=0.0).eval()
    nodes = torch.randn(len(adjacency), 16)
    with torch.no_grad():
        base = graph(nodes, adjacency)
        for node in (tax.id("C151"), tax.num_labels + 1):  # a label, virtual node of depth 2
            neighbours = set(torch.nonzero(adjacency[node]).flatten().tolist())
            outsider = next(j for j in range(len(adjacency)) if j not in neighbours)
            inside = [j for j in neighbours if j != node][:1]  # none for a virtual node in the code's direction
            for j, should_change in [(outsider, False)] + [(j, True) for j in inside]:
                moved = nodes.clone()
                moved[j] += 1.0
                changed = not torch.allclose(graph(moved, adjacency)[node], base[node])
                assert changed == should_change, (node, j)


def test_virtual_node_aggregates_only_its_depth() -> None:
    tax = load_taxonomy(shared_taxonomy("raw/rcv1.taxonomy"))
    adjacency = hierarchy_adjacency([list(p) for p in tax.parents], tax.levels)
    torch.manual_seed(0)
    graph = HierarchyInjection(16, num_layers=1, dropout=0.0).eval()
    nodes = torch.randn(len(adjacency), 16)
    with torch.no_grad():
        base = graph(nodes, adjacency)
        for label, level in ((tax.id("C15"), 2), (tax.id("CCAT"), 1), (tax.id("C151"), 3)):
            moved = nodes.clone()
            moved[label] += 1.0
            out = graph(moved, adjacency)
            for d in range(1, tax.depth + 1):
                changed = not torch.allclose(out[tax.num_labels + d - 1], base[tax.num_labels + d - 1])
                assert changed == (d == level), (label, d)


# ------------------------------------------------------------------ template and truncation
@pytest.mark.parametrize("text_sep", [True, False])
def test_template_positions_and_truncation_on_nyt_depth_8(text_sep: bool) -> None:
    tax = load_taxonomy(shared_taxonomy("raw/nyt.taxonomy"))
    assert tax.depth == 8
    model = tiny_hpt(tax, max_positions=40, template_text_sep=text_sep).eval()
    config = model.config
    template = template_token_ids(config.virtual_token_ids, config.pred_token_id, SEP)
    assert len(template) == 17 and model.max_text_length == 23
    ids, mask = padded_batch([30, 6])  # 30 > the 23-token text budget; 6 fits
    prompt_ids, prompt_mask, pred_positions, text_mask = build_prompt_inputs(
        ids, mask, torch.tensor(template), 40, SEP, 0, keep_text_sep=text_sep)
    assert prompt_ids.shape[1] <= 40
    kept_long = 23  # [CLS] + text (+ [SEP]) before the template
    expected_long = ids[0, :kept_long].tolist()
    if text_sep:
        expected_long[-1] = SEP  # a cut text still ends in [SEP]
    assert prompt_ids[0, :kept_long].tolist() == expected_long
    assert prompt_ids[0, kept_long:].tolist() == template
    short_text = ids[1, :6].tolist() if text_sep else ids[1, :5].tolist()  # code layout: no [SEP] before V_1
    n = len(short_text)
    assert prompt_ids[1, : n + 17].tolist() == short_text + template
    assert prompt_mask[1].tolist() == [1] * (n + 17) + [0] * (prompt_ids.shape[1] - n - 17)
    assert (prompt_ids[1, n + 17 :] == 0).all()
    for row in range(2):
        assert (prompt_ids[row, pred_positions[row]] == config.pred_token_id).all()
        assert prompt_ids[row, pred_positions[row] - 1].tolist() == config.virtual_token_ids
    assert text_mask.sum(-1).tolist() == [kept_long, n]
    with torch.no_grad():
        out = model(ids, mask)  # the model truncates the same way instead of overflowing 40 positions
    assert out.logits.shape == (2, tax.num_labels)


def test_virtual_tokens_enter_the_encoder_through_the_graph() -> None:
    model = tiny_hpt(DEPTH4).eval()
    ids, mask = padded_batch([6])
    with torch.no_grad():
        before = model(ids, mask).logits
        label_row = model.config.label_token_offset + DEPTH4.id("a1")
        model.bert.embeddings.word_embeddings.weight[label_row] += 0.5  # a label word feeds V_2 via the GAT
        after_input_side = model(ids, mask).logits
    changed = (after_input_side - before).abs() > 1e-6
    assert changed[0, DEPTH4.levels.index(1)]  # a depth-1 label's score moves: only through the graph


def test_hierarchy_too_deep_for_the_positions_is_rejected() -> None:
    chain = Taxonomy.from_edges([(None, "l0")] + [(f"l{i}", f"l{i + 1}") for i in range(30)])
    with pytest.raises(ValueError, match="31 levels"):
        tiny_hpt(chain)


def test_labels_of_wrong_width_are_rejected() -> None:
    ids, mask = padded_batch([5])
    with pytest.raises(ValueError, match=f"labels have 3 columns but the model has {DEPTH4.num_labels} labels"):
        tiny_hpt(DEPTH4)(ids, mask, labels=torch.zeros(1, 3))


def test_vocab_size_without_prompt_rows_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"\[PRED\] last"):
        HPTForHierarchicalClassification(HPTConfig(
            vocab_size=BASE_VOCAB, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
            id2label=dict(enumerate(DEPTH4.labels)), label_parents=[list(p) for p in DEPTH4.parents],
            label_token_offset=BASE_VOCAB))


# ------------------------------------------------------------------ MLM corruption
@pytest.mark.parametrize("eligible", ["text", "ordinary"])
def test_mlm_positions_follow_the_eligibility_switch(eligible: str) -> None:
    model = tiny_hpt(DEPTH4, mlm_eligible=eligible, mlm_probability=0.5).train()
    ids, mask = padded_batch([40, 12] * 20)
    config = model.config
    template = model._indices()["template"]
    prompt_ids, prompt_mask, _, text_mask = build_prompt_inputs(ids, mask, template, 48, SEP, 0)
    torch.manual_seed(0)
    corrupted, chosen = model._mlm_corruption(prompt_ids, prompt_mask, text_mask)
    chosen_ids = prompt_ids[chosen]
    assert (chosen_ids < config.label_token_offset).all()  # never V_d / [PRED]
    has_special = bool(torch.isin(chosen_ids, torch.tensor([CLS, SEP])).any())
    assert has_special == (eligible == "ordinary")
    assert not chosen[~prompt_mask.bool()].any()
    pool = text_mask if eligible == "text" else prompt_mask.bool() & (prompt_ids < config.label_token_offset)
    share = chosen.sum() / pool.sum()
    assert 0.4 < share < 0.6
    masked = (corrupted[chosen] == MASK).float().mean()
    kept = (corrupted[chosen] == prompt_ids[chosen]).float().mean()
    assert 0.7 < masked < 0.9 and 0.05 < kept < 0.2  # BERT's 80/10/10
    assert torch.equal(corrupted[~chosen], prompt_ids[~chosen])


def test_training_loss_adds_weighted_mlm_loss() -> None:
    ids, mask = padded_batch([12, 9])
    y = gold(DEPTH4, ["a2"], ["c"])
    model = tiny_hpt(DEPTH4, mlm_loss_weight=0.5, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
    torch.manual_seed(3)
    out = model(ids, mask, labels=y)
    assert out.mlm_loss is not None and out.mlm_loss > 0
    assert out.loss.item() == pytest.approx(out.classification_loss.item() + 0.5 * out.mlm_loss.item(), rel=1e-6)
    assert tiny_hpt(DEPTH4, mlm_loss_weight=0.0).train()(ids, mask, labels=y).mlm_loss is None


# ------------------------------------------------------------------ prediction
def test_decode_selects_positive_scores_and_consistency_removes_orphans() -> None:
    model = tiny_hpt(DEPTH4).eval()
    ids, mask = padded_batch([6, 9, 4, 7])
    with torch.no_grad():
        model.label_bias.copy_(torch.linspace(-2, 2, DEPTH4.num_labels))
        out = model.decode(ids, mask)
        assert torch.equal(out.selected, out.logits > 0)
        assert torch.equal(out.logits, model(ids, mask).logits)
        consistent = model.decode(ids, mask, hierarchy_consistent=True).selected
    assert out.selected.any() and (consistent <= out.selected).all()
    for row in consistent.tolist():
        for label, on in enumerate(row):
            if on and DEPTH4.parents[label]:
                assert any(row[p] for p in DEPTH4.parents[label]), DEPTH4.labels[label]


def test_learns_keyword_hierarchy_above_majority_baseline(toy_taxonomy: Taxonomy) -> None:
    ours, baseline = keyword_task_micro_f1(tiny_hpt(toy_taxonomy), toy_taxonomy)
    assert baseline < 0.5  # the most frequent label alone
    assert ours > baseline + 0.4, (ours, baseline)


# ------------------------------------------------------------------ construction, save / load, remote code
def test_from_encoder_initialises_prompt_rows(tmp_path: Path, tokenizer, tiny_bert_config) -> None:
    from transformers import BertForMaskedLM

    torch.manual_seed(0)
    BertForMaskedLM(tiny_bert_config).save_pretrained(tmp_path / "enc")
    tokenizer.save_pretrained(tmp_path / "enc")
    tax = Taxonomy.from_dict({"Root": ["sports", "science"], "sports": ["ball game"], "science": ["atom"]})
    model = HPTForHierarchicalClassification.from_encoder(str(tmp_path / "enc"), tax.labels,
                                                          [list(p) for p in tax.parents])
    reference = BertForMaskedLM.from_pretrained(tmp_path / "enc").bert.embeddings.word_embeddings.weight
    table = model.bert.embeddings.word_embeddings.weight
    base, config = reference.shape[0], model.config
    assert config.label_token_offset == base and table.shape[0] == base + 4 + 2 + 1
    ball, game = tokenizer.convert_tokens_to_ids(["ball", "game"])
    assert torch.allclose(table[base + tax.id("ball game")], (reference[ball] + reference[game]) / 2)
    assert torch.equal(table[config.pred_token_id], reference[tokenizer.mask_token_id])
    assert torch.equal(table[:base], reference)
    assert model.cls.decoder.weight.data_ptr() == table.data_ptr()


def test_save_load_round_trip_is_bit_exact(tmp_path: Path) -> None:
    model = tiny_hpt(DEPTH4, zmlce_mode="per_example_global", template_text_sep=False).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    again = HPTForHierarchicalClassification.from_pretrained(tmp_path).eval()
    a, b = model.state_dict(), again.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert again.cls.decoder.weight.data_ptr() == again.bert.embeddings.word_embeddings.weight.data_ptr()
    assert (again.config.zmlce_mode, again.config.template_text_sep) == ("per_example_global", False)
    ids, mask = padded_batch([6, 3])
    with torch.no_grad():  # equal weights; the loader's 8-byte-aligned tensors can take another CPU kernel path
        torch.testing.assert_close(model(ids, mask).logits, again(ids, mask).logits, rtol=0, atol=1e-6)
        assert torch.equal(model.decode(ids, mask).selected, again.decode(ids, mask).selected)


def test_remote_code_load_without_the_package(tmp_path: Path) -> None:
    model = tiny_hpt(DEPTH4).eval()
    model.save_pretrained(tmp_path / "model")
    ids, mask = padded_batch([6, 3])
    model_type, logits = remote_logits(tmp_path / "model", ids, mask, home=tmp_path)
    assert model_type == "hpt"
    with torch.no_grad():  # see test_save_load_round_trip_is_bit_exact for the tolerance
        torch.testing.assert_close(torch.tensor(logits), model(ids, mask).logits, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["raw/rcv1.taxonomy", "raw/nyt.taxonomy", "raw/wos.taxonomy"])
def test_level_bookkeeping_copies_agree(name: str) -> None:
    """hbgl_hf and hpt_hf each carry the level rule (shipped packages are self-contained)."""
    tax = load_taxonomy(shared_taxonomy(name))
    fields = {"id2label": dict(enumerate(tax.labels)), "label_parents": [list(p) for p in tax.parents]}
    assert HPTConfig(**fields).label_levels == HBGLConfig(**fields).label_levels == list(tax.levels)


@pytest.mark.parametrize("bias", ["label", "mlm_plus_label"])
def test_every_parameter_gets_a_gradient_without_an_mlm_loss(bias: str) -> None:
    """DDP without find_unused_parameters needs every trainable parameter in the loss, also at mlm_loss_weight=0."""
    model = tiny_hpt(DEPTH4, mlm_loss_weight=0.0, verbalizer_bias=bias).train()
    ids, mask = padded_batch([6, 3])
    model(ids, mask, labels=gold(DEPTH4, ["a111"], ["c"])).loss.backward()
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []


def test_a_config_saved_before_the_graph_and_bias_switches_keeps_its_model(tmp_path: Path) -> None:
    """A config.json without graph_residual / verbalizer_bias (saved before they existed) loads as the model it
    described (LayerNorm after the graph, MLM + label bias), not with the new paper defaults."""
    import json

    model = tiny_hpt(DEPTH4, graph_residual="layer_norm", verbalizer_bias="mlm_plus_label").eval()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["graph_residual"], config["verbalizer_bias"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    again = HPTForHierarchicalClassification.from_pretrained(tmp_path).eval()
    assert (again.config.graph_residual, again.config.verbalizer_bias) == ("layer_norm", "mlm_plus_label")
    ids, mask = padded_batch([6, 3])
    with torch.no_grad():
        torch.testing.assert_close(model(ids, mask).logits, again(ids, mask).logits, rtol=0, atol=1e-6)
    fresh = tiny_hpt(DEPTH4).config
    assert (fresh.graph_residual, fresh.verbalizer_bias) == ("plain", "label")
    assert HPTConfig.from_pretrained(tmp_path.parent / tmp_path.name).graph_residual == "layer_norm"
