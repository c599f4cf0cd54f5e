"""Self-checks of the clean-room HBGL reference (tests/reference/hbgl_reference.py); no package imports."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel
from transformers.models.bert.modeling_bert import BertPredictionHeadTransform

_spec = importlib.util.spec_from_file_location("hbgl_reference", Path(__file__).with_name("hbgl_reference.py"))
ref = importlib.util.module_from_spec(_spec)
sys.modules["hbgl_reference"] = ref
_spec.loader.exec_module(ref)

# toy tree used with the model: 0 Sport, 1 News (top); 2 Baseball, 3 Football (< Sport); 4 World (< News)
NAMES = ["Sport", "News", "Baseball", "Football", "World"]
PARENTS: list[list[int]] = [[], [], [0], [0], [1]]
OFFSET = 40


@pytest.fixture(scope="module")
def params() -> "ref.HBGLParams":
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        attn_implementation="eager",
    )
    bert = BertModel(config, add_pooling_layer=False).eval()
    transform = BertPredictionHeadTransform(config).eval()
    return ref.HBGLParams(
        bert=bert,
        word_embeddings=bert.embeddings.word_embeddings.weight,
        transform=transform,
        bias=torch.randn(50) * 0.1,
        label_offset=OFFSET,
        cls_id=1,
        sep_id=2,
        mask_id=3,
    )


def _texts() -> tuple[torch.Tensor, torch.Tensor]:
    input_ids = torch.tensor([[1, 10, 11, 12, 2, 0, 0], [1, 13, 14, 2, 0, 0, 0]])
    return input_ids, (input_ids != 0).long()


def test_levels_and_depth() -> None:
    assert ref.label_levels(PARENTS) == [1, 1, 2, 2, 2]
    assert ref.label_depth(PARENTS) == 2
    assert ref.label_levels([[], [0], [0, 1]]) == [1, 2, 3]  # DAG: 1 + max over parents


def test_layout_three_label_tree() -> None:
    parents = [[], [0], [0]]  # A; B, C children of A
    lay = ref.global_stage_layout(parents, self_attention=True, segment_id=1)
    assert lay["position_ids"].tolist() == [0, 1, 2, 2, 3]
    assert lay["token_type_ids"].tolist() == [0, 1, 1, 1, 0]
    expected = [
        [1, 1, 0, 0, 0],  # CLS: itself, A
        [1, 1, 1, 1, 0],  # A: CLS, itself, B, C
        [0, 1, 1, 0, 0],  # B: A, itself
        [0, 1, 0, 1, 0],  # C: A, itself
        [0, 0, 0, 0, 1],  # SEP: itself only
    ]
    assert lay["may_attend"].long().tolist() == expected
    lay0 = ref.global_stage_layout(parents, self_attention=False, segment_id=0)
    assert lay0["token_type_ids"].tolist() == [0, 0, 0, 0, 0]
    no_diag = [[v if (q != k or q == 4) else 0 for k, v in enumerate(row)] for q, row in enumerate(expected)]
    assert lay0["may_attend"].long().tolist() == no_diag


def test_intended_targets_toy_tree() -> None:
    parents = [[], [0], [0]]
    names = ["A", "B", "C"]
    t = ref.global_stage_targets(names, parents, [True, True, True], "intended")
    assert t.tolist() == [[1, 0, 0], [0, 1, 1], [0, 1, 1]]
    assert ref.global_stage_targets(names, parents, [False, True, False], "intended").tolist() == [[0, 1, 0]]
    assert ref.global_stage_targets(names, parents, [True, False, True], "intended").tolist() == [[1, 0, 0], [0, 0, 1]]
    assert ref.global_stage_targets(names, parents, [False, False, False], "intended").shape == (0, 3)


def test_shifted_targets_hand_example() -> None:
    # ids: 0 Sport, 1 Baseball (<0), 2 Football (<0), 3 News (top leaf)
    # sorted names: Baseball(1), Football(2), News(3), Sport(0) -> prev(1)=None, prev(2)=1, prev(3)=2, prev(0)=3
    names = ["Sport", "Baseball", "Football", "News"]
    parents = [[], [0], [0], []]
    masked = [True, True, True, True]
    intended = ref.global_stage_targets(names, parents, masked, "intended")
    assert intended.tolist() == [[1, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 1]]
    shifted = ref.global_stage_targets(names, parents, masked, "hbgl_shifted")
    # row 0: prev = News (leaf, parents {}); no other j has a prev with parents {} -> own column only
    # row 1: rank 0 -> own column only
    # rows 2, 3: prev = Baseball / Football, leaves under Sport -> columns 2 and 3
    assert shifted.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]
    # unmasked labels never get a column
    partial = ref.global_stage_targets(names, parents, [False, True, True, False], "hbgl_shifted")
    assert partial.tolist() == [[0, 1, 0, 0], [0, 0, 1, 0]]


def test_mask_ratio() -> None:
    assert ref.global_stage_mask_ratio(0.0, 0.15, 0.45) == pytest.approx(0.15)
    assert ref.global_stage_mask_ratio(0.5, 0.15, 0.45) == pytest.approx(0.30)
    assert ref.global_stage_mask_ratio(1.0, 0.15, 0.45) == pytest.approx(0.45)


def test_global_loss_respects_graph_mask(params: "ref.HBGLParams") -> None:
    torch.manual_seed(1)
    emb = torch.randn(5, 32, requires_grad=True)
    masked = torch.tensor([[False, False, True, False, False]])  # only Baseball masked

    def loss_for(e: torch.Tensor) -> torch.Tensor:
        return ref.global_stage_loss(params, e, NAMES, PARENTS, masked, True, 1, "intended")

    base = loss_for(emb)
    assert torch.isfinite(base)
    base.backward()
    assert emb.grad is not None and emb.grad.abs().sum() > 0
    # World (id 4) is 4 hops from Baseball (Baseball-Sport-CLS-News-World): invisible through 2 layers
    # (a random perturbation: a constant shift would be removed by the LayerNorms)
    changed = emb.detach().clone()
    changed[4] += torch.randn(32)
    assert torch.allclose(loss_for(changed), base.detach(), atol=1e-6)
    # Sport (the parent) is visible
    changed = emb.detach().clone()
    changed[0] += torch.randn(32)
    assert not torch.allclose(loss_for(changed), base.detach(), atol=1e-6)
    # nothing masked -> zero loss
    none = ref.global_stage_loss(params, emb, NAMES, PARENTS, torch.zeros(2, 5, dtype=torch.bool), True, 1, "intended")
    assert float(none.detach()) == 0.0


def test_global_loss_averages_over_all_entries(params: "ref.HBGLParams") -> None:
    torch.manual_seed(2)
    emb = torch.randn(5, 32)
    m1 = torch.tensor([[True, False, False, False, False]])
    m2 = torch.tensor([[False, False, True, True, False]])
    l1 = ref.global_stage_loss(params, emb, NAMES, PARENTS, m1, True, 1, "intended")
    l2 = ref.global_stage_loss(params, emb, NAMES, PARENTS, m2, True, 1, "intended")
    both = ref.global_stage_loss(params, emb, NAMES, PARENTS, torch.cat([m1, m2]), True, 1, "intended")
    assert torch.allclose(both, (l1 * 1 + l2 * 2) / 3, atol=1e-6)


def test_text_hidden_independent_of_label_slots(params: "ref.HBGLParams") -> None:
    input_ids, attn = _texts()
    rep = torch.zeros(3, dtype=torch.bool)
    lab_a = torch.tensor([1, 0, 1, 0, 0])
    lab_b = torch.tensor([0, 1, 0, 0, 1])
    with torch.no_grad():
        h_a, k_a, n_src = ref._local_stage_hidden(params, PARENTS, input_ids[0], attn[0], lab_a, rep)
        h_b, k_b, _ = ref._local_stage_hidden(params, PARENTS, input_ids[0], attn[0], lab_b, ~rep)
        plain = params.bert(input_ids=input_ids[:1, :n_src]).last_hidden_state[0]
    assert (k_a, k_b, n_src) == (2, 2, 5)
    assert torch.allclose(h_a[:n_src], h_b[:n_src], atol=1e-6)
    assert torch.allclose(h_a[:n_src], plain, atol=1e-5)


def test_local_padding_and_unused_slots_do_not_matter(params: "ref.HBGLParams") -> None:
    input_ids, attn = _texts()
    labels = torch.tensor([[1, 0, 1, 0, 0], [0, 1, 0, 0, 0]])  # second example: k = 1
    replaced = torch.tensor([[False, True, False], [False, False, True]])  # replaced[1, 2] is an unused slot
    with torch.no_grad():
        loss, logits = ref.local_stage_loss(params, PARENTS, input_ids, attn, labels, replaced, "level", "example")
        other_ids = input_ids.clone()
        other_ids[attn == 0] = 7
        loss2, logits2 = ref.local_stage_loss(
            params,
            PARENTS,
            other_ids,
            attn,
            labels,
            torch.tensor([[False, True, True], [False, False, False]]),
            "level",
            "example",
        )
    assert logits.shape == (2, 5)
    assert torch.allclose(loss, loss2, atol=1e-6)
    assert torch.allclose(logits, logits2, atol=1e-5)


def test_local_reductions_and_columns(params: "ref.HBGLParams") -> None:
    input_ids, attn = _texts()
    labels = torch.tensor([[1, 0, 1, 0, 0], [0, 1, 0, 0, 0]])
    replaced = torch.zeros(2, 3, dtype=torch.bool)
    with torch.no_grad():
        single = [
            ref.local_stage_loss(
                params,
                PARENTS,
                input_ids[i : i + 1],
                attn[i : i + 1],
                labels[i : i + 1],
                replaced[i : i + 1],
                "level",
                "example",
            )[0]
            for i in range(2)
        ]
        ex, logits = ref.local_stage_loss(params, PARENTS, input_ids, attn, labels, replaced, "level", "example")
        ba, _ = ref.local_stage_loss(params, PARENTS, input_ids, attn, labels, replaced, "level", "batch")
        al, logits_all = ref.local_stage_loss(params, PARENTS, input_ids, attn, labels, replaced, "all", "batch")
    # entries: example 0 (k=2): 3 + 4 + 1 = 8; example 1 (k=1): 3 + 4 = 7
    assert torch.allclose(ex, (single[0] + single[1]) / 2, atol=1e-6)
    assert torch.allclose(ba, (single[0] * 8 + single[1] * 7) / 15, atol=1e-6)
    assert not torch.allclose(al, ba)
    assert torch.allclose(logits, logits_all)  # columns do not change the logits


def test_decode_matches_teacher_forced_local_logits(params: "ref.HBGLParams") -> None:
    input_ids, attn = _texts()
    # force level 1 to fire exactly {Sport}: huge bias on Sport, very negative on News
    bias = params.bias.clone()
    bias[OFFSET + 0] = 50.0
    bias[OFFSET + 1] = -50.0
    p = ref.HBGLParams(**{**params.__dict__, "bias": bias})
    out = ref.decode(p, PARENTS, input_ids[:1], attn[:1], "paper", "sep", "level")
    labels = torch.tensor([[1, 0, 1, 0, 0]])  # gold Sport, Baseball -> gold slot 0 = row(Sport)
    with torch.no_grad():
        _, logits = ref.local_stage_loss(
            p, PARENTS, input_ids[:1], attn[:1], labels, torch.zeros(1, 3, dtype=torch.bool), "level", "example"
        )
    scores = out[0]["scores"]
    assert set(scores) == {1, 2}
    assert torch.allclose(scores[1][:2], logits[0, :2], atol=1e-4)
    assert torch.allclose(scores[2][2:], logits[0, 2:], atol=1e-4)
    assert 0 in out[0]["selected"] and 1 not in out[0]["selected"]


def _with_bias(params: "ref.HBGLParams", sep: float, labels: float) -> "ref.HBGLParams":
    bias = params.bias.clone()
    bias[params.sep_id] = sep
    bias[OFFSET : OFFSET + 5] = labels
    return ref.HBGLParams(**{**params.__dict__, "bias": bias})


def test_decode_rules_extreme_biases(params: "ref.HBGLParams") -> None:
    input_ids, attn = _texts()
    everything = _with_bias(params, -100.0, 100.0)
    nothing = _with_bias(params, -100.0, -100.0)
    stop = _with_bias(params, 100.0, 100.0)
    for cols in ("level", "all"):
        out = ref.decode(everything, PARENTS, input_ids, attn, "paper", "sep", cols)
        assert [o["selected"] for o in out] == [{0, 1, 2, 3, 4}] * 2
        out = ref.decode(nothing, PARENTS, input_ids, attn, "paper", "zero", cols)
        assert [o["selected"] for o in out] == [set()] * 2 and set(out[0]["scores"]) == {1, 2}
        out = ref.decode(nothing, PARENTS, input_ids, attn, "stop_at_empty", "sep", cols)
        assert set(out[0]["scores"]) == {1}
    out = ref.decode(everything, PARENTS, input_ids, attn, "authors", "sep", "all")
    assert out[0]["selected"] == {0, 1, 2, 3, 4} and set(out[0]["scores"]) == {0, 1, 2}
    assert out[0]["scores"][0].shape == (6,)
    out = ref.decode(stop, PARENTS, input_ids, attn, "authors", "sep", "all")
    assert out[0]["selected"] == set() and set(out[0]["scores"]) == {0}
    out = ref.decode(nothing, PARENTS, input_ids, attn, "authors", "zero", "all")
    assert out[0]["selected"] == set() and set(out[0]["scores"]) == {0, 1, 2}


def test_empty_level_input_matters(params: "ref.HBGLParams") -> None:
    input_ids, attn = _texts()
    # threshold 1.0: nothing can fire, so every level feeds the empty-level input
    a = ref.decode(params, PARENTS, input_ids[:1], attn[:1], "paper", "sep", "level", 1.0)[0]["scores"]
    b = ref.decode(params, PARENTS, input_ids[:1], attn[:1], "paper", "zero", "level", 1.0)[0]["scores"]
    assert torch.allclose(a[1], b[1])
    assert (a[2] - b[2]).abs().max() > 1e-4


def test_fire_cutoff() -> None:
    assert ref._fire_cutoff(0.5) == 0.0
    assert ref._fire_cutoff(0.8) == pytest.approx(math.log(4.0))


def test_detach_gold_inputs_changes_only_gradients(params: "ref.HBGLParams") -> None:
    input_ids, attn = _texts()
    labels = torch.tensor([[1, 0, 1, 0, 0], [0, 1, 0, 0, 1]])
    replaced = torch.zeros(2, 3, dtype=torch.bool)
    w = params.word_embeddings
    grads = []
    losses = []
    for detach in (False, True):
        loss, _ = ref.local_stage_loss(
            params, PARENTS, input_ids, attn, labels, replaced, "level", "batch", detach_gold_inputs=detach
        )
        losses.append(loss.detach())
        grads.append(torch.autograd.grad(loss, w)[0])
    assert torch.allclose(losses[0], losses[1])
    assert not torch.allclose(grads[0], grads[1])
