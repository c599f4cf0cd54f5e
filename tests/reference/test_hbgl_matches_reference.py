"""The package's HBGL (hbgl_hf) against the clean-room reference (tests/reference/hbgl_reference.py).

Tiny random models (tests/test_hbgl.py's ``tiny_hbgl``, dropout 0, eager attention where the reference runs):
losses and logits within 1e-5, decoded label sets identical, under the paper defaults and under the code
switches. The reference takes the package model's own parameters (``HBGLParams``), so any difference is a
difference of the computation, not of the weights.
"""

from __future__ import annotations

import math

import hbgl_reference as ref
import pytest
import torch
from compare_helpers import TOY, one_thread, parents_of, taxonomy  # noqa: F401 (one_thread: autouse fixture)
from conftest import padded_batch
from test_hbgl import BASE_VOCAB, DEPTH4, tiny_hbgl

from hbgl_hf import HBGLForHierarchicalClassification, LabelGraphPretrainer, label_pretraining
from hbgl_hf.label_pretraining import masked_label_targets, shared_target_matrix, sibling_group_keys
from htc_tools.taxonomy import Taxonomy

ATOL = 1e-5  # the tolerance for losses and logits
MARGIN = 1e-4  # every score a decision was taken on lies at least this far from the cut-off (well-posed cases)
SEP_ID = 3  # tiny_hbgl's [SEP]


# ------------------------------------------------------------------ helpers




def hbgl_model(tax: Taxonomy, **overrides: object) -> HBGLForHierarchicalClassification:
    """``tiny_hbgl`` with eager attention (what the reference's additive masks need) and no dropout, in eval mode."""
    settings = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, **overrides}
    return tiny_hbgl(tax, attn="eager", **settings).eval()


def params(model: HBGLForHierarchicalClassification) -> ref.HBGLParams:
    """The package model's parameters handed to the reference (the decoder is tied to the word embeddings)."""
    c = model.config
    assert model.bert.config._attn_implementation == "eager", "the reference needs eager attention"
    return ref.HBGLParams(
        bert=model.bert, word_embeddings=model.bert.embeddings.word_embeddings.weight, transform=model.cls.transform,
        bias=model.cls.bias, label_offset=c.label_token_offset, cls_id=c.cls_token_id, sep_id=c.sep_token_id,
        mask_id=c.mask_token_id,
    )


def gold(tax: Taxonomy, *leaf_sets: list[str]) -> torch.Tensor:
    """Ancestor-closed multi-hot rows, one per set of leaf names (an empty set: no label at all)."""
    y = torch.zeros(len(leaf_sets), tax.num_labels)
    for row, leaves in enumerate(leaf_sets):
        y[row, sorted(tax.ancestor_closure([tax.id(n) for n in leaves]))] = 1
    return y


def num_gold_levels(tax: Taxonomy, labels: torch.Tensor) -> list[int]:
    """k per example: the number of levels holding gold labels (a prefix 1..k for ancestor-closed labels)."""
    return [len({tax.levels[i] for i in row.nonzero().flatten().tolist()}) for row in labels]


def capture_bert_inputs(model: HBGLForHierarchicalClassification) -> tuple[list[dict], object]:
    """Record the keyword arguments of every ``model.bert(...)`` call; returns (records, hook handle)."""
    seen: list[dict] = []

    def hook(_module: object, _args: tuple, kwargs: dict) -> None:
        seen.append(dict(kwargs))

    return seen, model.bert.register_forward_pre_hook(hook, with_kwargs=True)


def capture_edge_encoder_inputs(model: HBGLForHierarchicalClassification, monkeypatch: pytest.MonkeyPatch
                                ) -> tuple[list[dict], object]:
    """The edge-list label pre-training path: per call, the keyword arguments of ``model.bert.embeddings`` plus the
    ``label_graph=(receivers, senders)`` its encoder pass runs on; returns (records, hook handle)."""
    seen: list[dict] = []
    run = label_pretraining.encode_wanted_positions

    def hook(_module: object, _args: tuple, kwargs: dict) -> None:
        seen.append(dict(kwargs))

    def recording(encoder, hidden, receivers, senders, wanted):
        seen[-1]["label_graph"] = (receivers, senders)
        return run(encoder, hidden, receivers, senders, wanted)

    monkeypatch.setattr(label_pretraining, "encode_wanted_positions", recording)
    return seen, model.bert.embeddings.register_forward_pre_hook(hook, with_kwargs=True)


def set_biases(model: HBGLForHierarchicalClassification, labels: dict[str, float], sep: float) -> None:
    """Decoder biases of the named labels (others: 0) and of [SEP]: they dominate a tiny model's scores (~0.1)."""
    tax_names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    with torch.no_grad():
        model.cls.bias.zero_()
        for name, value in labels.items():
            model.cls.bias[BASE_VOCAB + tax_names.index(name)] = value
        model.cls.bias[SEP_ID] = sep


def compare_decode(model: HBGLForHierarchicalClassification, ids: torch.Tensor, mask: torch.Tensor,
                   threshold: float = 0.5, use_cache: bool = True, package_attn: str = "eager") -> list[dict]:
    """``model.decode`` (under ``package_attn``) against ``ref.decode`` (eager): identical selected sets; each label's
    logit equal to the reference's score at its own level's step where that step ran for the example (-1e4
    elsewhere), under the authors' rule to its highest score over the steps before the one whose [SEP] fired (so a
    selected label always has a probability above the threshold). Returns the reference results."""
    c = model.config
    tax_levels = c.label_levels
    c._attn_implementation = package_attn
    out = model.decode(ids, mask, threshold=threshold, use_cache=use_cache)
    c._attn_implementation = "eager"
    results = ref.decode(params(model), c.label_parents, ids, mask, c.decoding, c.empty_level_input, c.loss_columns,
                         threshold)
    cutoff = ref._fire_cutoff(threshold)
    authors = c.decoding == "authors"
    for b, result in enumerate(results):
        for step, scores in result["scores"].items():  # the case must not hinge on rounding
            relevant = scores  # authors: [SEP] + every label; paper rules: the step's candidates
            if not authors and c.loss_columns == "level":
                relevant = scores[[i for i, lv in enumerate(tax_levels) if lv == step]]
            assert (relevant - cutoff).abs().min() > MARGIN, f"example {b} step {step} too close to the cut-off"
        assert set(out.selected[b].nonzero().flatten().tolist()) == result["selected"], f"example {b}"
        if authors:  # each label's highest score over the steps before the one whose [SEP] fired
            stop = next((k for k, s in result["scores"].items() if float(s[0]) > cutoff), None)
            kept = [s[1:] for k, s in result["scores"].items() if stop is None or k < stop]
            expected = torch.stack(kept).max(0).values if kept else torch.full_like(out.logits[b], -1e4)
            assert (out.logits[b].float() - expected.float()).abs().max() <= ATOL, b
            continue
        for label, level in enumerate(tax_levels):  # paper rules: the score at the label's own level
            if level in result["scores"]:
                assert abs(float(out.logits[b, label]) - float(result["scores"][level][label])) <= ATOL, (b, label)
            else:
                assert float(out.logits[b, label]) == -1e4, (b, label)
    return results


# ------------------------------------------------------------------ the reference itself
def test_reference_bert_call_takes_the_additive_mask() -> None:
    """The reference's BERT call (eager, additive ``[1, 1, N, N]`` float mask) really masks: under the label-graph
    layout [SEP] sees only itself, so its output ignores every other input and no other row depends on it, while
    under a full mask it does."""
    model = hbgl_model(TOY)
    p = params(model)
    layout = ref.global_stage_layout(parents_of(TOY), True, 1)
    g = torch.Generator().manual_seed(0)
    embeds = torch.randn(TOY.num_labels + 2, 32, generator=g)
    moved = embeds.clone()
    moved[:-1] += torch.randn(TOY.num_labels + 1, 32, generator=g)
    sep_moved = embeds.clone()
    sep_moved[-1] += torch.randn(32, generator=g)
    full = torch.ones_like(layout["may_attend"])
    with torch.no_grad():
        run = [ref._run_bert(p, e, layout["position_ids"], layout["token_type_ids"], m)
               for e, m in ((embeds, layout["may_attend"]), (moved, layout["may_attend"]),
                            (sep_moved, layout["may_attend"]), (embeds, full), (moved, full))]
    assert torch.allclose(run[0][-1], run[1][-1], atol=1e-6)  # [SEP] ignores the others
    assert torch.allclose(run[0][:-1], run[2][:-1], atol=1e-6)  # nobody attends [SEP]
    assert not torch.allclose(run[3][-1], run[4][-1], atol=1e-3)  # but without the mask it would


# ------------------------------------------------------------------ global stage: layout, targets, ratio, loss
@pytest.mark.parametrize("name", ["depth4", "toy", "rcv1", "wos", "nyt"])
@pytest.mark.parametrize(("self_attention", "segment_id"), [(True, 1), (False, 0), (True, 0), (False, 1)])
def test_global_layout_matches_reference(name: str, self_attention: bool, segment_id: int,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Global stage input layout: LabelGraphPretrainer's ``positions`` and ``graph_mask``, and the position ids,
    token types and attention it hands BERT, equal the reference's ``global_stage_layout`` (Eq. 1-2) for
    cpt_self_attention x cpt_segment_id, on real taxonomies and a DAG: under ``cpt_attention="dense"`` the
    (eager, additive) mask, under ``"edges"`` (default) an edge list whose pairs are exactly the mask's True
    entries."""
    tax = taxonomy(name)
    layout = ref.global_stage_layout(parents_of(tax), self_attention, segment_id)
    width = tax.num_labels + 2
    for attention in ("dense", "edges"):
        model = hbgl_model(tax, cpt_self_attention=self_attention, cpt_segment_id=segment_id,
                           cpt_attention=attention)
        stage = LabelGraphPretrainer(model)
        assert torch.equal(stage.positions.cpu(), layout["position_ids"])
        assert torch.equal(stage.graph_mask.cpu(), layout["may_attend"])
        # dense: the model.bert(...) call; edges: the embeddings' inputs and the edges the encoder runs on
        seen, handle = capture_bert_inputs(model) if attention == "dense" else capture_edge_encoder_inputs(
            model, monkeypatch)
        masked = torch.zeros(2, tax.num_labels, dtype=torch.bool)
        masked[0, 0] = masked[1, -1] = True
        with torch.no_grad():
            stage(masked=masked)
        handle.remove()
        (call,) = seen
        for b in range(2):
            assert torch.equal(call["position_ids"][b], layout["position_ids"])
            assert torch.equal(call["token_type_ids"][b], layout["token_type_ids"])
            if attention == "dense":
                assert torch.equal(call["attention_mask"][b : b + 1],
                                   ref.additive_mask(layout["may_attend"], torch.float32))
            else:
                receivers, senders = call["label_graph"]
                mine = (receivers // width) == b
                dense = torch.zeros(width, width, dtype=torch.bool)
                dense[receivers[mine] % width, senders[mine] % width] = True
                assert int(mine.sum()) == int(layout["may_attend"].sum())  # no duplicate edge
                assert torch.equal(dense, layout["may_attend"])
                assert torch.equal(senders[mine] // width, receivers[mine] // width)  # no edge across rows


@pytest.mark.parametrize("name", ["depth4", "toy", "rcv1", "wos", "nyt"])
@pytest.mark.parametrize("mode", ["intended", "hbgl_shifted"])
def test_global_targets_match_reference(name: str, mode: str) -> None:
    """Masked-label targets (Eq. 4 / the authors' shifted lookup in sorted-name order): ``masked_label_targets`` with
    ``shared_target_matrix(sibling_group_keys(...))`` and LabelGraphPretrainer's ``shared_targets`` (built from
    config.id2label) equal ``global_stage_targets``, with names whose sorted order is not the id order."""
    tax = taxonomy(name)
    names, parents = list(tax.labels), parents_of(tax)
    assert names != sorted(names)  # the shifted mode must follow the names, not the ids
    shared = shared_target_matrix(sibling_group_keys(parents, mode, names))
    stage = LabelGraphPretrainer(hbgl_model(tax, cpt_target_mode=mode))
    assert torch.equal(stage.shared_targets.cpu(), shared)
    g = torch.Generator().manual_seed(0)
    ratios = torch.tensor([0.15, 0.45, 0.9, 1.0])[:, None]
    masked = torch.rand(len(ratios), tax.num_labels, generator=g) < ratios
    targets = masked_label_targets(masked, shared)
    shared_rows = 0
    for b in range(len(ratios)):
        expected = ref.global_stage_targets(names, parents, masked[b].tolist(), mode)
        got = targets[b][masked[b]].float()
        assert torch.equal(got, expected), f"row {b}"
        assert not targets[b][~masked[b]].any()
        shared_rows += int((expected.sum(-1) > 1).sum())
    if name in ("rcv1", "wos", "nyt") or (name, mode) == ("toy", "intended"):  # (DEPTH4 has no sibling leaves)
        assert shared_rows > 0  # sibling targets really occur


@pytest.mark.parametrize(("r_min", "r_max"), [(0.15, 0.45), (0.15, 0.15), (0.3, 0.1)])
def test_global_mask_ratio_matches_reference(r_min: float, r_max: float) -> None:
    """The label mask ratio schedule (Alg. 1: linear in the stage's progress) equals ``global_stage_mask_ratio``
    for progress in [0, 1], including the authors' constant ratio (min = max)."""
    stage = LabelGraphPretrainer(hbgl_model(DEPTH4, cpt_mask_ratio_min=r_min, cpt_mask_ratio_max=r_max))
    progress = torch.tensor([0.0, 0.1, 0.25, 0.5, 0.999, 1.0])
    got = stage.mask_ratio(progress)
    expected = torch.tensor([ref.global_stage_mask_ratio(float(x), r_min, r_max) for x in progress])
    assert torch.allclose(got, expected, atol=1e-7)


GLOBAL_SWITCHES = {
    "paper": {},
    "no_self_attention": {"cpt_self_attention": False},
    "segment_0": {"cpt_segment_id": 0},
    "shifted_targets": {"cpt_target_mode": "hbgl_shifted"},
    "authors_code": {"cpt_self_attention": False, "cpt_segment_id": 0, "cpt_target_mode": "hbgl_shifted"},
}


def global_masks(tax: Taxonomy) -> torch.Tensor:
    """Three label masks: many labels (sibling leaves included), a few, and a single one."""
    g = torch.Generator().manual_seed(1)
    masked = torch.rand(3, tax.num_labels, generator=g) < torch.tensor([0.7, 0.3, 0.0])[:, None]
    masked[2, -1] = True
    if tax is TOY:
        masked[0, [TOY.id("ball"), TOY.id("track"), TOY.id("music")]] = True
    return masked


@pytest.mark.parametrize("package_attn", ["eager", "sdpa", "edges"])
@pytest.mark.parametrize("switches", list(GLOBAL_SWITCHES))
@pytest.mark.parametrize("name", ["toy", "depth4", "wos"])
def test_global_loss_matches_reference(name: str, switches: str, package_attn: str) -> None:
    """Global stage loss: ``LabelGraphPretrainer(model)(masked=M)["loss"]`` and its gradient on the stage's label
    rows equal ``global_stage_loss`` (with ``label_embeddings=stage.label_embeddings``, moved away from the table's
    rows) under the paper defaults and each code switch; the package under its edge-list attention (default) and
    under the dense mask with eager and sdpa attention. On WOS (names not in
    id order) both target modes give shared sibling targets, and different ones."""
    tax = taxonomy(name)
    config = {"cpt_self_attention": True, "cpt_segment_id": 1, "cpt_target_mode": "intended",
              **GLOBAL_SWITCHES[switches]}
    edges = package_attn == "edges"  # the default edge-list attention; else the dense mask under eager / sdpa
    model = hbgl_model(tax, cpt_attention="edges" if edges else "dense", **GLOBAL_SWITCHES[switches])
    stage = LabelGraphPretrainer(model)
    with torch.no_grad():
        stage.label_embeddings.add_(0.05 * torch.randn(stage.label_embeddings.shape,
                                                       generator=torch.Generator().manual_seed(2)))
    masked = global_masks(tax)
    if name == "wos":
        names, parents = list(tax.labels), parents_of(tax)
        targets = {mode: ref.global_stage_targets(names, parents, masked[0].tolist(), mode)
                   for mode in ("intended", "hbgl_shifted")}
        assert all((t.sum(-1) > 1).any() for t in targets.values())
        assert not torch.equal(targets["intended"], targets["hbgl_shifted"])
    model.config._attn_implementation = "eager" if edges else package_attn
    loss = stage(masked=masked)["loss"]
    (grad,) = torch.autograd.grad(loss, stage.label_embeddings)
    model.config._attn_implementation = "eager"
    expected = ref.global_stage_loss(params(model), stage.label_embeddings, list(tax.labels), parents_of(tax), masked,
                                     config["cpt_self_attention"], config["cpt_segment_id"], config["cpt_target_mode"])
    (expected_grad,) = torch.autograd.grad(expected, stage.label_embeddings)
    assert abs(loss.item() - expected.item()) <= ATOL
    assert (grad - expected_grad).abs().max().item() <= ATOL


def test_global_loss_with_nothing_masked_matches_reference() -> None:
    """A batch of label masks with nothing masked: the reference's loss is 0 (kept in the graph); the package's must
    be the same."""
    model = hbgl_model(TOY)
    stage = LabelGraphPretrainer(model)
    masked = torch.zeros(2, TOY.num_labels, dtype=torch.bool)
    loss = stage(masked=masked)["loss"]
    expected = ref.global_stage_loss(params(model), stage.label_embeddings, list(TOY.labels), parents_of(TOY), masked,
                                     True, 1, "intended")
    assert math.isfinite(loss.item()) and abs(loss.item() - expected.item()) <= ATOL


# ------------------------------------------------------------------ local stage: teacher-forced loss and logits
def local_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded texts with: two paths of different lengths, the DAG label "x1" (x under a1 and b1), no label at
    all, and a short path plus a top-level leaf."""
    ids, mask = padded_batch([7, 4, 9, 5], seed=3)
    labels = gold(DEPTH4, ["a111", "a2"], ["x1"], [], ["b12", "c"])
    return ids, mask, labels


def check_local(model: HBGLForHierarchicalClassification, tax: Taxonomy, ids: torch.Tensor, mask: torch.Tensor,
                labels: torch.Tensor, replaced: bool) -> None:
    """Package ``model(ids, mask, labels=...)`` loss and logits against ``ref.local_stage_loss``; logits compared for
    the labels whose level slot the example uses (level - 1 <= k; the reference documents other slots differ)."""
    c = model.config
    out = model(ids, mask, labels=labels)
    slots = model.depth + 1
    rep = torch.full((ids.shape[0], slots), replaced)
    ref_loss, ref_logits = ref.local_stage_loss(params(model), c.label_parents, ids, mask, labels, rep,
                                                c.loss_columns, c.loss_reduction)
    assert abs(out.loss.item() - ref_loss.item()) <= ATOL
    levels = torch.tensor(tax.levels)
    for b, k in enumerate(num_gold_levels(tax, labels)):
        used = levels - 1 <= k
        assert (out.logits[b, used] - ref_logits[b, used]).abs().max().item() <= ATOL, f"example {b}"


@pytest.mark.parametrize("replaced", [False, True], ids=["eval-no-target-masking", "train-all-slots-masked"])
@pytest.mark.parametrize("reduction", ["example", "batch"])
@pytest.mark.parametrize("loss_columns", ["level", "all"])
def test_local_stage_matches_reference(loss_columns: str, reduction: str, replaced: bool) -> None:
    """Local stage loss and logits of ``model(ids, mask, labels=...)`` equal ``local_stage_loss`` for loss_columns
    level|all x loss_reduction example|batch, with no gold slot replaced (eval, target_mask_prob 0) and every slot
    replaced by [MASK] (train mode, dropout 0, target_mask_prob 1), on DEPTH4 with multi-path and DAG labels, an
    example without labels and a right-padded batch."""
    model = hbgl_model(DEPTH4, loss_columns=loss_columns, loss_reduction=reduction,
                       target_mask_prob=1.0 if replaced else 0.0)
    model.train(replaced)
    with torch.no_grad():  # a non-zero bias, so that its columns are checked too
        model.cls.bias.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(4))
    ids, mask, labels = local_batch()
    check_local(model, DEPTH4, ids, mask, labels, replaced)


@pytest.mark.parametrize("loss_columns", ["level", "all"])
def test_local_stage_with_random_target_masking_matches_reference(loss_columns: str) -> None:
    """target_mask_prob 0.5 (the default) in train mode: the slots the package replaced by [MASK] (its ``[B, T]``
    uniform draw, re-drawn from the same seed) given to the reference as ``replaced`` give the same loss and logits."""
    model = hbgl_model(DEPTH4, loss_columns=loss_columns, target_mask_prob=0.5)
    model.train()
    ids, mask, labels = local_batch()
    torch.manual_seed(11)
    replaced = torch.rand(ids.shape[0], model.depth + 1) < 0.5
    torch.manual_seed(11)
    out = model(ids, mask, labels=labels)
    used = torch.arange(model.depth + 1)[None, :] <= torch.tensor(num_gold_levels(DEPTH4, labels))[:, None]
    assert replaced[used].any() and not replaced[used].all()
    ref_loss, ref_logits = ref.local_stage_loss(params(model), model.config.label_parents, ids, mask, labels, replaced,
                                                loss_columns, "example")
    assert abs(out.loss.item() - ref_loss.item()) <= ATOL
    levels = torch.tensor(DEPTH4.levels)
    for b, k in enumerate(num_gold_levels(DEPTH4, labels)):
        on = levels - 1 <= k
        assert (out.logits[b, on] - ref_logits[b, on]).abs().max().item() <= ATOL


@pytest.mark.parametrize("loss_columns", ["level", "all"])
def test_local_stage_sdpa_package_matches_eager_reference(loss_columns: str) -> None:
    """The package under its default sdpa attention (boolean masks) gives the eager reference's loss and logits."""
    model = hbgl_model(DEPTH4, loss_columns=loss_columns, target_mask_prob=0.0)
    ids, mask, labels = local_batch()
    model.config._attn_implementation = "sdpa"
    out = model(ids, mask, labels=labels)
    model.config._attn_implementation = "eager"
    rep = torch.zeros(4, model.depth + 1, dtype=torch.bool)
    ref_loss, ref_logits = ref.local_stage_loss(params(model), model.config.label_parents, ids, mask, labels, rep,
                                                loss_columns, "example")
    assert abs(out.loss.item() - ref_loss.item()) <= ATOL
    levels = torch.tensor(DEPTH4.levels)
    for b, k in enumerate(num_gold_levels(DEPTH4, labels)):
        used = levels - 1 <= k
        assert (out.logits[b, used] - ref_logits[b, used]).abs().max().item() <= ATOL


def test_local_stage_gradients_match_reference_with_detached_gold_inputs() -> None:
    """Gradients of the local loss on the word embeddings, the decoder bias and the head transform equal the
    reference's with ``detach_gold_inputs=True`` (the package detaches the gold-slot inputs, as the authors' code)."""
    model = hbgl_model(DEPTH4, target_mask_prob=0.0)
    ids, mask, labels = local_batch()
    weights = [model.bert.embeddings.word_embeddings.weight, model.cls.bias, model.cls.transform.dense.weight]
    got = torch.autograd.grad(model(ids, mask, labels=labels).loss, weights)
    rep = torch.zeros(4, model.depth + 1, dtype=torch.bool)
    ref_loss, _ = ref.local_stage_loss(params(model), model.config.label_parents, ids, mask, labels, rep, "level",
                                       "example", detach_gold_inputs=True)
    expected = torch.autograd.grad(ref_loss, weights)
    for g, e in zip(got, expected, strict=True):
        assert (g - e).abs().max().item() <= ATOL


@pytest.mark.parametrize("label_init", ["mean", "sum"])
def test_from_encoder_model_matches_reference(tiny_encoder_dir, label_init: str) -> None:
    """A model built with ``from_encoder`` (label rows initialised as the mean or sum of the name's word pieces;
    transform and bias from the checkpoint's MLM head) gives the reference's local loss, logits and decoding."""
    model = HBGLForHierarchicalClassification.from_encoder(
        str(tiny_encoder_dir), list(TOY.labels), parents_of(TOY), label_init=label_init, target_mask_prob=0.0,
    ).eval()
    model.config._attn_implementation = "eager"
    ids, mask = padded_batch([6, 9, 4], seed=5)
    labels = gold(TOY, ["biochem"], [], ["ball", "music"])
    check_local(model, TOY, ids, mask, labels, replaced=False)
    out = model.decode(ids, mask)
    results = ref.decode(params(model), parents_of(TOY), ids, mask, "paper", "sep", "level")
    assert [set(row.nonzero().flatten().tolist()) for row in out.selected] == [r["selected"] for r in results]


# ------------------------------------------------------------------ decoding
# level 1: a fires, b free, c silent; level 2: all silent (an empty level); level 3: a11 fires, x free;
# level 4: x1 fires, a111 free. "Free" labels keep the tiny model's own scores (about +-0.1).
MIXED = {"a": 3.0, "c": -3.0, "a1": -3.0, "a2": -3.0, "b1": -3.0, "a11": 3.0, "b12": -3.0, "x1": 3.0}
DECODE_CASES = [(rule, empty, columns) for rule in ("paper", "stop_at_empty", "authors") for empty in ("sep", "zero")
                for columns in ("level", "all")]


def decode_batch() -> tuple[torch.Tensor, torch.Tensor]:
    return padded_batch([7, 4, 9], seed=3)


@pytest.mark.parametrize("package_attn", ["eager", "sdpa"])
@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize(("rule", "empty", "columns"), DECODE_CASES)
def test_decode_matches_reference(rule: str, empty: str, columns: str, use_cache: bool, package_attn: str) -> None:
    """``model.decode`` selected sets and per-label logits equal ``ref.decode`` (sets and per-step scores) for
    decoding paper|stop_at_empty|authors x empty_level_input sep|zero x loss_columns level|all, with and without the
    KV cache, the package under eager and sdpa attention; biases give firing, silent and free labels, and [SEP] never
    fires."""
    model = hbgl_model(DEPTH4, decoding=rule, empty_level_input=empty, loss_columns=columns)
    set_biases(model, MIXED, sep=-3.0)
    ids, mask = decode_batch()
    results = compare_decode(model, ids, mask, use_cache=use_cache, package_attn=package_attn)
    assert all(r["selected"] for r in results)


@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("empty", ["sep", "zero"])
def test_decode_paper_goes_on_after_an_empty_level_stop_at_empty_does_not(empty: str, use_cache: bool) -> None:
    """An empty level 2 followed by a firing level 3: "paper" keeps decoding (a, a11, x1 selected), "stop_at_empty"
    stops after level 1 ({a}); the package equals the reference under both rules."""
    ids, mask = decode_batch()
    labels = {"a": 3.0, "b": -3.0, "c": -3.0, "a1": -3.0, "a2": -3.0, "b1": -3.0, "a11": 3.0, "x": -3.0,
              "b12": -3.0, "a111": -3.0, "x1": 3.0}
    selected = {}
    for rule in ("paper", "stop_at_empty"):
        model = hbgl_model(DEPTH4, decoding=rule, empty_level_input=empty)
        set_biases(model, labels, sep=-3.0)
        selected[rule] = [r["selected"] for r in compare_decode(model, ids, mask, use_cache=use_cache)]
    ids_of = {DEPTH4.id(n) for n in ("a", "a11", "x1")}
    assert selected["paper"] == [ids_of] * 3
    assert selected["stop_at_empty"] == [{DEPTH4.id("a")}] * 3


@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no-cache"])
def test_decode_empty_level_input_changes_the_selection(use_cache: bool) -> None:
    """After an empty level 2, a11's level-3 score depends on what was fed for level 2 (e_[SEP] or zero): its bias is
    set midway between the two scores, so "sep" and "zero" select different sets; both equal the reference."""
    ids, mask = decode_batch()
    ids, mask = ids[:1], mask[:1]
    labels = {"a": 3.0, "b": -3.0, "c": -3.0, "a1": -3.0, "a2": -3.0, "b1": -3.0, "a11": 0.0, "x": -3.0,
              "b12": -3.0, "a111": -3.0, "x1": 3.0}
    def model_for(empty: str) -> HBGLForHierarchicalClassification:
        model = hbgl_model(DEPTH4, empty_level_input=empty)
        set_biases(model, labels, sep=-3.0)
        with torch.no_grad():  # a larger e_[SEP], so that feeding it or zero matters more than rounding
            model.bert.embeddings.word_embeddings.weight[SEP_ID] *= 30
        return model

    raw = {}
    for empty in ("sep", "zero"):  # a11's level-3 score does not depend on a11's own bias
        model = model_for(empty)
        result = ref.decode(params(model), model.config.label_parents, ids, mask, "paper", empty, "level")[0]
        raw[empty] = float(result["scores"][3][DEPTH4.id("a11")])
    assert abs(raw["sep"] - raw["zero"]) > 4 * MARGIN
    labels["a11"] = -(raw["sep"] + raw["zero"]) / 2
    selected = {}
    for empty in ("sep", "zero"):
        model = model_for(empty)
        selected[empty] = compare_decode(model, ids, mask, use_cache=use_cache)[0]["selected"]
    assert selected["sep"] != selected["zero"]
    assert selected["sep"] ^ selected["zero"] == {DEPTH4.id("a11")}


@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("columns", ["level", "all"])
def test_decode_authors_sep_fires_mid_way(columns: str, use_cache: bool) -> None:
    """The authors' rule with [SEP] firing first at a step k* >= 1 (its bias set between its scores before and at
    k*; [SEP]'s bias never changes what is fed): the package stops at the same step, drops that step's labels (one
    fires there for the first time) and keeps the earlier ones, as the reference."""
    ids, mask = decode_batch()
    model = hbgl_model(DEPTH4, decoding="authors", loss_columns=columns)
    set_biases(model, MIXED, sep=-10.0)
    results = ref.decode(params(model), model.config.label_parents, ids, mask, "authors", "sep", columns)
    found = []  # (example, k*): [SEP]'s raw score at k* beats every earlier step's
    for b, result in enumerate(results):
        sep_raw = [float(result["scores"][k][0]) + 10.0 for k in sorted(result["scores"])]
        found += [(b, k, sep_raw) for k in range(1, len(sep_raw)) if sep_raw[k] > max(sep_raw[:k]) + 4 * MARGIN][:1]
    b, stop, sep_raw = found[0]
    set_biases(model, MIXED, sep=-(sep_raw[stop] + max(sep_raw[:stop])) / 2)
    results = compare_decode(model, ids, mask, use_cache=use_cache)
    assert sorted(results[b]["scores"]) == list(range(stop + 1))  # example b stopped at k*
    sep_scores = [float(results[b]["scores"][k][0]) for k in range(stop + 1)]
    assert sep_scores[-1] > 0 and max(sep_scores[:-1]) < 0
    fired = [set((results[b]["scores"][k][1:] > 0).nonzero().flatten().tolist()) for k in range(stop + 1)]
    only_at_stop = fired[-1] - set().union(*fired[:-1])
    assert only_at_stop and not only_at_stop & results[b]["selected"]  # the stop step's new labels are dropped
    assert results[b]["selected"] == set().union(*fired[:-1])


@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no-cache"])
def test_decode_authors_differs_from_paper(use_cache: bool) -> None:
    """x1 (level 4) gets a bias midway between its paper score at level 4 and its best authors score over steps
    0..D (x1 firing changes nothing before it fires): exactly one rule selects it; both equal the reference."""
    ids, mask = decode_batch()
    ids, mask = ids[:1], mask[:1]
    labels = {name: -3.0 for name in DEPTH4.labels}
    labels["a"] = 3.0
    x1 = DEPTH4.id("x1")
    labels["x1"] = -10.0
    raw = {}
    for rule in ("paper", "authors"):
        model = hbgl_model(DEPTH4, decoding=rule)
        set_biases(model, labels, sep=-10.0)
        result = ref.decode(params(model), model.config.label_parents, ids, mask, rule, "sep", "level")[0]
        column = x1 + 1 if rule == "authors" else x1
        steps = result["scores"] if rule == "authors" else {4: result["scores"][4]}
        raw[rule] = max(float(s[column]) + 10.0 for s in steps.values())
    assert abs(raw["paper"] - raw["authors"]) > 4 * MARGIN
    labels["x1"] = -(raw["paper"] + raw["authors"]) / 2
    selected = {}
    for rule in ("paper", "authors"):
        model = hbgl_model(DEPTH4, decoding=rule)
        set_biases(model, labels, sep=-10.0)
        selected[rule] = compare_decode(model, ids, mask, use_cache=use_cache)[0]["selected"]
    assert selected["paper"] ^ selected["authors"] == {x1}


@pytest.mark.parametrize("rule", ["paper", "authors"])
def test_decode_threshold_matches_reference(rule: str) -> None:
    """A decode threshold other than 0.5 (``decode(threshold=0.7)``: score > logit(0.7)) selects as the reference;
    biases 0.5 and 1.2 sit on either side of logit(0.7) = 0.847 (the tiny model adds about +-0.2)."""
    labels = {**MIXED, "a": 1.2, "b": 0.5, "a11": 1.2, "x1": 0.5}
    model = hbgl_model(DEPTH4, decoding=rule)
    set_biases(model, labels, sep=-3.0)
    ids, mask = decode_batch()
    results = compare_decode(model, ids, mask, threshold=0.7)
    assert all(DEPTH4.id("a") in r["selected"] and DEPTH4.id("x1") not in r["selected"] for r in results)
