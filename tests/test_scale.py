"""Scale (issue 15): the O(L) forms equal the O(L^2) ones they replace.

Edge-list attention == the masked dense attention; edge-list GAT == the dense GAT; index-based parent tests ==
the dense parent matrix; sparse metrics == the former int64 matrix products; the sampled label-graph pre-training ==
the whole-graph sequence when the taxonomy fits, and each sampled sequence is the label graph of its labels.
Real taxonomies come from ../shared/taxonomies (skipped where absent).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import padded_batch, shared_taxonomy
from test_hbgl import BASE_VOCAB, DEPTH4, tiny_hbgl

from hbgl_hf import HBGLConfig, LabelGraphPretrainer, graph_attention
from hbgl_hf.graph_attention import (
    ATTENTION_NAME,
    attention_implementation,
    edge_attention,
    encode_wanted_positions,
    inverted_dropout,
)
from hbgl_hf.hierarchy_index import any_parent_selected, gather_sum_by, parent_links, segment_sum
from hbgl_hf.label_pretraining import (
    sample_label_subset,
    sequence_edges,
    shared_target_matrix,
    sibling_group_keys,
    stage_rows,
)
from hbgl_hf.masks import label_graph_edges, label_graph_mask
from hpt_hf.graph import HierarchyInjection, hierarchy_adjacency, hierarchy_edges
from htc_tools.metrics import (
    ancestor_augment,
    hierarchical_metrics,
    hierarchical_prf,
    inconsistency_rate,
    micro_macro_f1,
    per_level_f1,
)
from htc_tools.taxonomy import Taxonomy, load_taxonomy

REPO = Path(__file__).resolve().parents[1]
REAL = ["rcv1", "wos", "nyt", "dbpedia", "bgc"]


def real(name: str) -> Taxonomy:
    return load_taxonomy(shared_taxonomy(f"json/{name}.taxonomy.json"))


def parents_of(tax: Taxonomy) -> list[list[int]]:
    return [list(p) for p in tax.parents]


# ------------------------------------------------------------------ index-based hierarchy == dense
@pytest.mark.parametrize("name", REAL)
def test_index_hierarchy_equals_dense_on_real_taxonomies(name: str) -> None:
    """Label-graph edges == the dense mask's entries (both self-attention modes); HPT's edges == its dense adjacency
    (both edge modes); ``any_parent_selected`` == ``selected @ P.T > 0`` with the dense parent matrix."""
    tax = real(name)
    parents = parents_of(tax)
    for self_attention in (True, False):
        dense_mask = label_graph_mask(parents, self_attention)
        assert torch.equal(label_graph_edges(parents, self_attention), dense_mask.nonzero().T)
    for directed in (False, True):
        assert torch.equal(hierarchy_edges(parents, list(tax.levels), directed),
                           hierarchy_adjacency(parents, list(tax.levels), directed).nonzero().T)
    dense = torch.zeros(tax.num_labels, tax.num_labels)
    for child, ps in enumerate(parents):
        dense[child, ps] = 1.0
    selected = torch.rand(64, tax.num_labels, generator=torch.Generator().manual_seed(0)) < 0.2
    expected = (selected.float() @ dense.T) > 0
    got = any_parent_selected(selected, parent_links(parents, root=None))
    assert torch.equal(got, expected) and got.any() and not got.all()


def test_index_hierarchy_on_a_dag(toy_taxonomy: Taxonomy) -> None:
    parents = parents_of(toy_taxonomy)
    assert any(len(p) > 1 for p in parents)
    assert torch.equal(label_graph_edges(parents), label_graph_mask(parents).nonzero().T)
    assert torch.equal(hierarchy_edges(parents, list(toy_taxonomy.levels)),
                       hierarchy_adjacency(parents, list(toy_taxonomy.levels)).nonzero().T)


def test_label_levels_derived_once_and_invalidated() -> None:
    config = HBGLConfig(id2label={0: "a", 1: "b", 2: "c"}, label_parents=[[], [0], [1]])
    first = config.label_levels
    assert first == [1, 2, 3] and config.label_levels is first  # cached, not recomputed
    config.label_parents = [[], [0], [0]]
    assert config.label_levels == [1, 2, 2] and config.depth == 2
    assert "_label_levels_cache" not in config.to_json_string()


def test_segment_sum_accumulates_low_precision_in_float32() -> None:
    """Sums per segment in any index order, in the values' dtype, accumulated in float32: 300 bf16 ones add up to 300
    (a bf16 running sum stops at 256); an index out of range is an error, not a longer result."""
    g = torch.Generator().manual_seed(3)
    index = torch.randint(0, 7, (40,), generator=g)
    values = torch.randn(40, 3, 2, generator=g, dtype=torch.float64)
    expected = torch.zeros(9, 3, 2, dtype=torch.float64)
    for i, row in zip(index.tolist(), values, strict=True):
        expected[i] += row
    assert torch.allclose(segment_sum(values, index, 9), expected, atol=1e-12)
    assert torch.equal(segment_sum(values[:0], index[:0], 4), torch.zeros(4, 3, 2, dtype=torch.float64))
    ones = torch.ones(300, 2, dtype=torch.bfloat16)
    total = segment_sum(ones, torch.zeros(300, dtype=torch.long), 1)
    assert total.dtype == torch.bfloat16 and total.tolist() == [[300.0, 300.0]]
    exact = segment_sum(torch.tensor([2**24, 1, 3]), torch.tensor([0, 0, 1]), 2)  # integers stay integers
    assert exact.tolist() == [2**24 + 1, 3]
    with pytest.raises((IndexError, RuntimeError), match=r"out of (range|bounds)"):
        segment_sum(values, index, 5)


# ------------------------------------------------------------------ edge-list attention == dense
@pytest.mark.parametrize("seed", [0, 1])
def test_edge_attention_equals_masked_dense_attention(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    b, h, n, d = 3, 2, 9, 4
    q, k, v = (torch.randn(b, h, n, d, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3))
    mask = (torch.rand(b, n, n, generator=g) < 0.3) | torch.eye(n, dtype=torch.bool)
    rows, receivers, senders = mask.nonzero(as_tuple=True)
    out = edge_attention(q, k, v, rows * n + receivers, rows * n + senders, 0.3)
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None], scale=0.3)
    assert torch.allclose(out, expected.transpose(1, 2), atol=1e-12)
    weights = torch.randn(out.shape, generator=g, dtype=torch.float64)
    grads = torch.autograd.grad((out * weights).sum(), (q, k, v))
    expected_grads = torch.autograd.grad((expected.transpose(1, 2) * weights).sum(), (q, k, v))
    assert all(torch.allclose(a, e, atol=1e-12) for a, e in zip(grads, expected_grads, strict=True))


@pytest.mark.parametrize("name", ["nyt", "rcv1"])
@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("layer_norm", [False, True], ids=["plain", "layer_norm"])
def test_edge_gat_equals_dense_gat(name: str, directed: bool, layer_norm: bool) -> None:
    """HPT's graph layers on the edge list == on the dense adjacency (both graph_residual modes, both edge modes),
    outputs and gradients."""
    tax = real(name)
    parents, levels = parents_of(tax), list(tax.levels)
    torch.manual_seed(0)
    graph = HierarchyInjection(16, num_layers=2, dropout=0.0, layer_norm=layer_norm).double()
    nodes = torch.randn(tax.num_labels + tax.depth, 16, dtype=torch.float64, requires_grad=True)
    dense = graph(nodes, hierarchy_adjacency(parents, levels, directed))
    edges = graph(nodes, hierarchy_edges(parents, levels, directed))
    assert torch.allclose(dense, edges, atol=1e-10)
    (gd,) = torch.autograd.grad(dense.square().sum(), nodes)
    (ge,) = torch.autograd.grad(edges.square().sum(), nodes)
    assert torch.allclose(gd, ge, atol=1e-10)


# ------------------------------------------------------------------ label-graph pre-training
def _loss_and_grad(stage: LabelGraphPretrainer, rows: dict, **kwargs: object) -> tuple[float, torch.Tensor]:
    loss = stage(torch.tensor(rows["progress"]), torch.tensor(rows["mask_seed"]), **kwargs)["loss"]
    (grad,) = torch.autograd.grad(loss, stage.label_embeddings)
    return loss.item(), grad


def test_sampled_pretraining_equals_whole_graph_when_it_fits() -> None:
    """``cpt_max_labels`` >= L (or 0) gives the whole-graph sequence: the same masks, loss and gradient as the dense
    masked encoder path (``cpt_attention="dense"``, Alg. 1 as before)."""
    rows = stage_rows(1, 4, seed=3)
    results = []
    for overrides in ({"cpt_attention": "dense", "cpt_max_labels": 0}, {"cpt_max_labels": 0},
                      {"cpt_max_labels": DEPTH4.num_labels}, {"cpt_max_labels": 500}):
        stage = LabelGraphPretrainer(tiny_hbgl(DEPTH4, attn="eager", hidden_dropout_prob=0.0,
                                               attention_probs_dropout_prob=0.0, **overrides).eval())
        slots, masked = stage.draw_sequences(torch.tensor(rows["progress"]), torch.tensor(rows["mask_seed"]))
        assert torch.equal(slots, torch.arange(DEPTH4.num_labels).expand(4, -1))
        results.append((masked, *_loss_and_grad(stage, rows)))
    for masked, loss, grad in results[1:]:
        assert torch.equal(masked, results[0][0])
        assert loss == pytest.approx(results[0][1], abs=1e-6)
        assert torch.allclose(grad, results[0][2], atol=1e-6)


@pytest.mark.parametrize("self_attention", [False, True])
def test_encoding_only_the_wanted_positions_equals_the_full_run(self_attention: bool) -> None:
    """``encode_wanted_positions`` (what the stage runs: each layer only for the positions the masked slots' last
    states depend on) == the whole encoder with the edge attention, at the masked slots, states and input gradients,
    on the real RCV1 taxonomy; the last layer's feed-forward sees only the masked slots."""
    tax = real("rcv1")
    model = tiny_hbgl(tax, attn="eager", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                      cpt_self_attention=self_attention).eval()
    stage = LabelGraphPretrainer(model)
    slots, masked = stage.draw_sequences(torch.tensor([0.2, 0.6, 1.0]), torch.tensor([1, 2, 3]))
    b, n = masked.shape
    receivers, senders = sequence_edges(slots, stage.links, self_attention)
    wanted = torch.nn.functional.pad(masked, (1, 1)).reshape(-1)
    states = torch.randn(b * (n + 2), model.config.hidden_size, generator=torch.Generator().manual_seed(0),
                         requires_grad=True)
    with attention_implementation(model.bert.config, ATTENTION_NAME):
        full = model.bert.encoder(states.view(b, n + 2, -1), label_graph=(receivers, senders)).last_hidden_state
    full = full.reshape(b * (n + 2), -1)[wanted]
    fed = []
    hook = model.bert.encoder.layer[-1].intermediate.dense.register_forward_pre_hook(lambda m, a: fed.append(a[0]))
    pruned = encode_wanted_positions(model.bert.encoder, states, receivers, senders, wanted)
    hook.remove()
    assert fed[0].shape[0] == int(masked.sum()) < b * (n + 2) // 2
    assert torch.allclose(pruned, full, atol=1e-5)
    weights = torch.randn(full.shape, generator=torch.Generator().manual_seed(1))
    (grad_full,) = torch.autograd.grad((full * weights).sum(), states)
    (grad_pruned,) = torch.autograd.grad((pruned * weights).sum(), states)
    assert torch.allclose(grad_pruned, grad_full, atol=1e-5) and grad_full.abs().sum() > 0


@pytest.mark.parametrize("which", ["hidden_dropout_prob", "attention_probs_dropout_prob"])
def test_the_pruned_encoder_draws_each_dropout_in_train_mode_only(which: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stage runs the frozen encoder in train mode (the authors'): the pruned layers apply the hidden dropout and
    the attention-probability dropout each (train-mode outputs differ from the eval ones and from draw to draw), and
    in eval mode equal the dropout-free encoder."""
    tax = real("rcv1")
    settings = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    model = tiny_hbgl(tax, attn="eager", **{**settings, which: 0.3})
    plain = tiny_hbgl(tax, attn="eager", **settings).eval()
    plain.load_state_dict(model.state_dict())
    stage = LabelGraphPretrainer(model)
    slots, masked = stage.draw_sequences(torch.tensor([0.5, 1.0]), torch.tensor([4, 5]))
    receivers, senders = sequence_edges(slots, stage.links, True)
    wanted = torch.nn.functional.pad(masked, (1, 1)).reshape(-1)
    states = torch.randn(len(wanted), model.config.hidden_size, generator=torch.Generator().manual_seed(0))

    def encode(encoder: torch.nn.Module, seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        return encode_wanted_positions(encoder, states, receivers, senders, wanted)

    reference = encode(plain.bert.encoder, 0)
    assert torch.equal(encode(model.bert.encoder.eval(), 0), reference)
    first, second = encode(model.bert.encoder.train(), 0), encode(model.bert.encoder.train(), 1)
    assert not torch.allclose(first, reference, atol=1e-3) and not torch.allclose(first, second, atol=1e-3)
    assert torch.equal(first, encode(model.bert.encoder.train(), 0))  # the draw follows torch's seed
    drawn: list[float] = []  # each layer's three dropouts, in BertLayer's order
    with monkeypatch.context() as patch:
        patch.setattr(graph_attention, "inverted_dropout", lambda x, p, training: drawn.append(p) or x)
        encode(model.bert.encoder.train(), 0)
    config = model.config
    layer = [config.attention_probs_dropout_prob, config.hidden_dropout_prob, config.hidden_dropout_prob]
    assert drawn == layer * config.num_hidden_layers


def test_the_pruned_encoders_dropouts_sit_where_bert_layer_has_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every dropout replaced by the same deterministic stand-in (``x * (1 - p)`` in train mode): the pruned layers in
    train mode equal transformers' own ``BertLayer`` stack (with the edge attention) at the wanted positions, so
    each dropout acts on the same tensor as there; the stand-in changes the states (it is applied)."""
    tax = real("rcv1")
    model = tiny_hbgl(tax, attn="eager", hidden_dropout_prob=0.4, attention_probs_dropout_prob=0.2)
    stage = LabelGraphPretrainer(model)
    slots, masked = stage.draw_sequences(torch.tensor([0.2, 1.0]), torch.tensor([1, 2]))
    b, n = masked.shape
    receivers, senders = sequence_edges(slots, stage.links, True)
    wanted = torch.nn.functional.pad(masked, (1, 1)).reshape(-1)
    states = torch.randn(b * (n + 2), model.config.hidden_size, generator=torch.Generator().manual_seed(0))
    without = encode_wanted_positions(model.bert.encoder.eval(), states, receivers, senders, wanted)
    monkeypatch.setattr(graph_attention, "inverted_dropout", lambda x, p, training: x * (1 - p) if training else x)
    monkeypatch.setattr(torch.nn.Dropout, "forward", lambda self, x: x * (1 - self.p) if self.training else x)
    encoder = model.bert.encoder.train()
    with attention_implementation(model.bert.config, ATTENTION_NAME):
        full = encoder(states.view(b, n + 2, -1), label_graph=(receivers, senders)).last_hidden_state
    pruned = encode_wanted_positions(encoder, states, receivers, senders, wanted)
    assert torch.allclose(pruned, full.reshape(b * (n + 2), -1)[wanted], atol=1e-5)
    assert not torch.allclose(pruned, without, atol=1e-3)


def test_edge_products_broadcast_alike_with_and_without_a_graph() -> None:
    """``gather_sum_by`` multiplies in place only where no graph records it and the shapes allow: ``[E, h]`` weights
    over ``[N, 1, d]`` values give ``[R, h, d]`` either way, the sums of a loop over the edges."""
    generator = torch.Generator().manual_seed(0)
    weights, values = torch.randn(7, 2, generator=generator), torch.randn(4, 1, 3, generator=generator)
    gather, into = torch.tensor([0, 1, 3, 3, 2, 0, 1]), torch.tensor([0, 0, 1, 2, 4, 4, 4])
    expected = torch.zeros(5, 2, 3)
    for e in range(7):
        expected[into[e]] += weights[e][:, None] * values[gather[e]]
    with torch.no_grad():
        without_graph = gather_sum_by(weights, values, gather, into, 5)
    with_graph = gather_sum_by(weights.requires_grad_(), values, gather, into, 5)
    assert torch.allclose(without_graph, expected, atol=1e-6) and torch.allclose(with_graph, expected, atol=1e-6)
    same = torch.randn(4, 2, 3, generator=generator)  # the in-place path: [E, h, 1] x [E, h, d]
    with torch.no_grad():
        assert torch.allclose(gather_sum_by(weights, same, gather, into, 5),
                              gather_sum_by(weights.detach().double(), same.double(), gather, into, 5).float(),
                              atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_inverted_dropout_zeroes_p_and_scales_the_rest_as_torch_does(dtype: torch.dtype) -> None:
    """``inverted_dropout``: a fraction ``p`` zeroed, the rest multiplied by ``1 / (1 - p)`` rounded to the input's
    dtype, as ``F.dropout``; the identity in eval mode and at ``p = 0``; zeros at ``p = 1``."""
    x = torch.randn(400, 500, generator=torch.Generator().manual_seed(0)).to(dtype) + 5  # no zeros
    torch.manual_seed(0)
    out, torch_out = inverted_dropout(x, 0.25, True), torch.nn.functional.dropout(x, 0.25, True)
    kept, torch_kept = out != 0, torch_out != 0
    assert abs(kept.float().mean().item() - 0.75) < 0.005
    assert torch.equal(out[kept], x[kept] * torch.tensor(1 / 0.75, dtype=dtype))
    assert torch.equal(torch_out[torch_kept], x[torch_kept] * torch.tensor(1 / 0.75, dtype=dtype))
    assert out.dtype == dtype and inverted_dropout(x, 0.25, False) is x and inverted_dropout(x, 0.0, True) is x
    assert not inverted_dropout(x, 1.0, True).any()


def test_sampled_subgraphs_are_ancestor_closed_label_graphs() -> None:
    """Beyond ``cpt_max_labels``: each sequence holds at most N labels, closed under ancestors, in id order; its
    attention edges are exactly the label-graph mask of the induced sub-taxonomy; edges and the dense path agree."""
    tax = real("nyt")
    limit = 40
    overrides = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "cpt_max_labels": limit}
    model = tiny_hbgl(tax, attn="eager", **overrides).eval()
    stage = LabelGraphPretrainer(model)
    rows = stage_rows(1, 6, seed=0)
    slots, masked = stage.draw_sequences(torch.tensor(rows["progress"]), torch.tensor(rows["mask_seed"]))
    assert slots.shape == (6, limit) and masked.any(-1).all() and not (masked & (slots < 0)).any()
    ancestors: list[set[int]] = []
    for ps in tax.parents:
        ancestors.append({a for p in ps for a in (p, *ancestors[p])})
    for row in slots:
        labels = row[row >= 0].tolist()
        assert labels == sorted(labels) and len(labels) > limit // 2
        assert all(ancestors[label] <= set(labels) for label in labels)
        sub_index = {label: i for i, label in enumerate(labels)}
        sub_parents = [[sub_index[p] for p in tax.parents[label]] for label in labels]
        expected = label_graph_mask(sub_parents, True)
        edges = sequence_edges(row[None, : len(labels)], stage.links, True)
        got = torch.zeros_like(expected)
        got[edges[0], edges[1]] = True
        assert torch.equal(got, expected) and edges.shape[1] == int(expected.sum())
    assert len({tuple(r.tolist()) for r in slots}) > 1  # sequences draw other sub-graphs
    loss_edges, grad_edges = _loss_and_grad(stage, rows)
    dense = LabelGraphPretrainer(tiny_hbgl(tax, attn="eager", cpt_attention="dense", **overrides).eval())
    loss_dense, grad_dense = _loss_and_grad(dense, rows)
    assert loss_edges == pytest.approx(loss_dense, abs=1e-6) and torch.allclose(grad_edges, grad_dense, atol=1e-6)
    assert grad_edges.abs().sum(-1).gt(0).sum() <= 6 * limit  # only the sampled labels learn


def test_sample_label_subset_is_whole_graph_when_budget_allows() -> None:
    parents = parents_of(DEPTH4)
    children = [[c for c, ps in enumerate(parents) if p in ps] for p in range(len(parents))]
    ancestors: list[list[int]] = []
    for ps in parents:
        ancestors.append(sorted({a for p in ps for a in (p, *ancestors[p])}))
    full = sample_label_subset(torch.Generator().manual_seed(0), 100, parents, children, ancestors)
    assert full == list(range(DEPTH4.num_labels))
    small = sample_label_subset(torch.Generator().manual_seed(0), 4, parents, children, ancestors)
    assert 0 < len(small) <= 4 and all(set(ancestors[i]) <= set(small) for i in small)


def test_stage_group_ids_equal_shared_target_matrix() -> None:
    tax = real("wos")
    for mode in ("intended", "hbgl_shifted"):
        stage = LabelGraphPretrainer(tiny_hbgl(tax, cpt_target_mode=mode))
        assert torch.equal(stage.shared_targets, shared_target_matrix(sibling_group_keys(
            parents_of(tax), mode, list(tax.labels))))


# ------------------------------------------------------------------ metrics: sparse == the former int64 products
def _old_ancestor_augment(m: np.ndarray, tax: Taxonomy) -> np.ndarray:
    closure = np.eye(tax.num_labels, dtype=bool)
    for i, ancestors in enumerate(tax.ancestors):
        closure[i, list(ancestors)] = True
    return (m.astype(np.int64) @ closure.astype(np.int64)) > 0


def _old_inconsistency_rate(pred: np.ndarray, tax: Taxonomy) -> float:
    orphans = sum(int((pred[:, label] & ~pred[:, list(ps)].any(1)).sum())
                  for label, ps in enumerate(tax.parents) if ps)
    return orphans / pred.sum() if pred.sum() else 0.0


@pytest.mark.parametrize("name", ["nyt", "rcv1", "toy"])
def test_sparse_metrics_equal_former_dense_products(name: str, toy_taxonomy: Taxonomy) -> None:
    tax = toy_taxonomy if name == "toy" else real(name)
    rng = np.random.default_rng(0)
    gold, pred = (rng.random((200, tax.num_labels)) < 0.05 for _ in range(2))
    assert np.array_equal(ancestor_augment(pred, tax), _old_ancestor_augment(pred, tax))
    assert np.array_equal(ancestor_augment(pred.astype(np.float32), tax), _old_ancestor_augment(pred, tax))
    assert inconsistency_rate(pred, tax) == pytest.approx(_old_inconsistency_rate(pred, tax), abs=1e-12)
    metrics = hierarchical_metrics(gold.astype(int), pred.astype(float), tax)
    aug_g, aug_p = _old_ancestor_augment(gold, tax), _old_ancestor_augment(pred, tax)
    right = (aug_g & aug_p).sum()
    assert metrics["hier_precision"] == pytest.approx(right / aug_p.sum())
    assert metrics["hier_recall"] == pytest.approx(right / aug_g.sum())
    assert 0 < metrics["inconsistency_rate"] < 1
    # the sparse one-pass hierarchical_metrics == the separate (matrix) functions
    separate = {**micro_macro_f1(gold, pred), **hierarchical_prf(gold, pred, tax), **per_level_f1(gold, pred, tax),
                "inconsistency_rate": inconsistency_rate(pred, tax)}
    assert metrics.keys() == separate.keys()
    assert all(metrics[k] == pytest.approx(separate[k], abs=1e-12) for k in separate)


@pytest.mark.parametrize(("field", "value"), [("cpt_max_labels", -1), ("cpt_max_labels", 1.5),
                                              ("cpt_max_labels", True), ("cpt_attention", "sparse")])
def test_scale_config_values_are_checked(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        HBGLConfig(id2label={0: "a"}, label_parents=[[]], **{field: value})


# ------------------------------------------------------------------ decoding scores reachable labels only
@pytest.mark.parametrize(("loss_columns", "decoding", "scored_per_label"),
                         [("level", "paper", 1), ("level", "stop_at_empty", 1), ("all", "paper", 4)])
def test_paper_decoding_scores_each_level_on_its_own_labels(loss_columns: str, decoding: str,
                                                            scored_per_label: int) -> None:
    """Under Eq. 8's columns a step may fire only its level's labels, so decoding scores (and feeds back) those
    alone: every label once per decode, O(L) not O(D * L). The selections equal the reference's
    (tests/reference); here the head's columns are counted and the result checked against a decode that scores
    every label at every step and keeps the step's level (the former code)."""
    model = tiny_hbgl(DEPTH4, loss_columns=loss_columns, decoding=decoding).eval()
    with torch.no_grad():
        model.cls.bias[BASE_VOCAB:] = 2 * torch.tensor([(-1) ** i for i in range(DEPTH4.num_labels)])
    scored: list[torch.Tensor] = []
    model.cls.register_forward_hook(lambda module, args, out: scored.append(args[1].clone()))
    batch = padded_batch([9, 4, 6, 2])
    for use_cache in (True, False):
        scored.clear()
        out = model.decode(*batch, use_cache=use_cache, hierarchy_consistent=True)
        columns = torch.cat(scored)
        assert len(columns) == scored_per_label * DEPTH4.num_labels
        assert torch.equal(columns.unique(), model.label_columns)
    if loss_columns == "level":  # the former code: every label scored at every step, the step's level kept
        model.config.loss_columns = "all"  # takes the all-columns path, whose candidates are the column mask:
        levels = model._indices()["level_mask"]  # set back to each step's own level
        model._indices()["column_mask"][: levels.shape[0], 1:] = levels
        full = model.decode(*batch, hierarchy_consistent=True)
        assert torch.equal(out.selected, full.selected) and out.selected.any()
        assert torch.allclose(out.logits, full.logits, atol=1e-6)
