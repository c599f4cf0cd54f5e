"""Self-checks of the HPT reference alone (no package import): hand examples and closed forms."""

from __future__ import annotations

import math

import hpt_reference as ref
import pytest
import torch
import torch.nn.functional as F

# A small DAG: 0, 1 top level; 2 under 0; 3 under 0 and 1; 4 under 3 (depth 3 via the longest path).
PARENTS = [[], [], [0], [0, 1], [3]]
L = len(PARENTS)
D = 3
OFFSET = 30
CLS, SEP, MASK, PAD = 1, 2, 3, 0
V1, V2, V3 = OFFSET + L, OFFSET + L + 1, OFFSET + L + 2
PRED = OFFSET + L + D


def test_depths_and_groups():
    assert ref.label_depths(PARENTS) == [1, 1, 2, 2, 3]
    assert ref.num_depths(PARENTS) == 3
    assert ref.labels_at_depth(PARENTS) == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError):
        ref.label_depths([[1], [0]])


def test_template_layouts_and_truncation():
    ids = [CLS, 10, 11, 12, SEP]
    paper = ref.build_template(ids, D, OFFSET, L, CLS, SEP, True, 64)
    assert paper == [CLS, 10, 11, 12, SEP, V1, PRED, V2, PRED, V3, PRED, SEP]
    code = ref.build_template(ids, D, OFFSET, L, CLS, SEP, False, 64)
    assert code == [CLS, 10, 11, 12, V1, PRED, V2, PRED, V3, PRED, SEP]
    assert ref.pred_positions(paper, PRED) == [6, 8, 10]
    assert ref.pred_positions(code, PRED) == [5, 7, 9]
    assert ref.text_word_count(paper, V1, True) == 3
    assert ref.text_word_count(code, V1, False) == 3
    # Truncation keeps [CLS], the text [SEP] (paper) and the template; words are cut from the end.
    cut_paper = ref.build_template(ids, D, OFFSET, L, CLS, SEP, True, 10)
    assert cut_paper == [CLS, 10, SEP, V1, PRED, V2, PRED, V3, PRED, SEP]
    cut_code = ref.build_template(ids, D, OFFSET, L, CLS, SEP, False, 10)
    assert cut_code == [CLS, 10, 11, V1, PRED, V2, PRED, V3, PRED, SEP]
    assert ref.build_template(ids, D, OFFSET, L, CLS, SEP, True, 9) == [CLS, SEP, V1, PRED, V2, PRED, V3, PRED, SEP]
    with pytest.raises(ValueError):
        ref.build_template(ids, D, OFFSET, L, CLS, SEP, True, 8)


def test_adjacency_by_hand():
    n = L + D
    expected_directed = torch.eye(n, dtype=torch.bool)
    for child, parent in [(2, 0), (3, 0), (3, 1), (4, 3)]:
        expected_directed[child, parent] = True
    for label, virtual in [(0, 5), (1, 5), (2, 6), (3, 6), (4, 7)]:
        expected_directed[label, virtual] = True
    assert torch.equal(ref.graph_adjacency(PARENTS, directed=True), expected_directed)
    expected_undirected = expected_directed | expected_directed.T
    assert torch.equal(ref.graph_adjacency(PARENTS, directed=False), expected_undirected)
    # Directed: a virtual node hears only itself.
    directed = ref.graph_adjacency(PARENTS, directed=True)
    for virtual in range(L, n):
        assert directed[virtual].nonzero().flatten().tolist() == [virtual]


def make_layers(hidden: int, count: int, seed: int = 0) -> list[dict]:
    generator = torch.Generator().manual_seed(seed)
    layers = []
    for _ in range(count):
        layers.append(
            {
                "weight": torch.randn(hidden, hidden, generator=generator) / math.sqrt(hidden),
                "att_src": torch.randn(hidden, generator=generator),
                "att_dst": torch.randn(hidden, generator=generator),
                "bias": torch.randn(hidden, generator=generator) * 0.1,
                "ln_weight": 1 + 0.1 * torch.randn(hidden, generator=generator),
                "ln_bias": 0.1 * torch.randn(hidden, generator=generator),
            }
        )
    return layers


def dense_gat(layers: list[dict], x: torch.Tensor, adjacency: torch.Tensor, residual: str) -> torch.Tensor:
    """Independent vectorised form (masked softmax) to cross-check the loop version."""
    for layer in layers:
        xp = x @ layer["weight"].T
        logits = (xp @ layer["att_dst"])[:, None] + (xp @ layer["att_src"])[None, :]
        logits = F.leaky_relu(logits, 0.2).masked_fill(~adjacency, float("-inf"))
        out = torch.softmax(logits, dim=1) @ xp + layer["bias"]
        if residual == "layer_norm":
            x = F.layer_norm(x + out, (x.shape[1],), layer["ln_weight"], layer["ln_bias"], eps=1e-5)
        else:
            x = x + out
    return x


class _Holder:
    def __init__(self, layers):
        self.graph_layers = layers


@pytest.mark.parametrize("residual", ["layer_norm", "plain"])
@pytest.mark.parametrize("directed", [True, False])
def test_graph_forward_matches_dense_form(residual, directed):
    hidden = 6
    layers = make_layers(hidden, 2)
    x = torch.randn(L + D, hidden, generator=torch.Generator().manual_seed(1))
    adjacency = ref.graph_adjacency(PARENTS, directed)
    got = ref.graph_forward(_Holder(layers), x, adjacency, residual)
    torch.testing.assert_close(got, dense_gat(layers, x, adjacency, residual))


def test_graph_virtual_node_alone_when_directed():
    hidden = 6
    layer = make_layers(hidden, 1)[0]
    x = torch.randn(L + D, hidden, generator=torch.Generator().manual_seed(2))
    got = ref.graph_forward(_Holder([layer]), x, ref.graph_adjacency(PARENTS, True), "plain")
    # Only the self-loop: alpha = 1, so t' = t + (W t + b) (Eq. 5 residual).
    for virtual in range(L, L + D):
        torch.testing.assert_close(got[virtual], x[virtual] + x[virtual] @ layer["weight"].T + layer["bias"])


def test_zmlce_closed_forms():
    zeros = torch.zeros(5)
    gold = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0])
    # All scores 0: log(1 + #neg) + log(1 + #pos) per group.
    assert float(ref.zmlce(zeros, gold, [[0, 1, 2, 3, 4]])) == pytest.approx(math.log(4) + math.log(3))
    assert float(ref.zmlce(zeros, gold, [[0, 1], [2, 3], [4]])) == pytest.approx(
        (math.log(2) + math.log(2)) + (math.log(2) + math.log(2)) + math.log(2)
    )
    scores = torch.tensor([0.3, -1.2, 2.0, -0.5, 0.7])
    value = float(ref.zmlce(scores, gold, [[0, 1, 2, 3, 4]]))
    # Anchor form: logsumexp over {0} ∪ negatives + logsumexp over {0} ∪ -positives.
    neg = torch.tensor([0.0, -1.2, 2.0, 0.7])
    pos = torch.tensor([0.0, -0.3, 0.5])
    assert value == pytest.approx(float(torch.logsumexp(neg, 0) + torch.logsumexp(pos, 0)), rel=1e-6)


def test_classification_loss_modes():
    scores = torch.tensor([[0.3, -1.2, 2.0, -0.5, 0.7], [1.0, 1.0, -2.0, 0.1, -0.4]])
    gold = torch.tensor([[1.0, 0.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0, 1.0]])
    per_depth = ref.classification_loss(scores, gold, PARENTS, "per_depth")
    global_ = ref.classification_loss(scores, gold, PARENTS, "per_example_global")
    expected_depth = sum(float(ref.zmlce(scores[b], gold[b], [[0, 1], [2, 3], [4]])) for b in range(2)) / 2
    expected_global = sum(float(ref.zmlce(scores[b], gold[b], [list(range(5))])) for b in range(2)) / 2
    assert float(per_depth) == pytest.approx(expected_depth)
    assert float(global_) == pytest.approx(expected_global)
    assert float(per_depth) != pytest.approx(float(global_))


def test_decode_thresholds():
    scores = torch.tensor([[0.0, 0.1, -0.1, 2.0, -3.0]])
    assert ref.decode(scores) == [{1, 3}]
    assert ref.decode(scores, threshold=0.8) == [{3}]  # cutoff log(4) ≈ 1.386
    assert ref.decode(torch.tensor([[1.5, 1.3]]), threshold=0.8) == [{0}]


def test_mlm_eligibility_and_corruption():
    paper = [CLS, 10, 11, SEP, V1, PRED, V2, PRED, V3, PRED, SEP, PAD]
    code = [CLS, 10, 11, V1, PRED, V2, PRED, V3, PRED, SEP, PAD]
    assert ref.mlm_eligible(paper, 2, OFFSET, PAD, "text") == [False, True, True] + [False] * 9
    assert ref.mlm_eligible(paper, 2, OFFSET, PAD, "ordinary") == [True] * 4 + [False] * 6 + [True, False]
    assert ref.mlm_eligible(code, 2, OFFSET, PAD, "ordinary") == [True] * 3 + [False] * 6 + [True, False]
    assert ref.corruption_rule(0.0) == "mask"
    assert ref.corruption_rule(0.119) == "mask"
    assert ref.corruption_rule(0.121) == "keep"
    assert ref.corruption_rule(0.134) == "keep"
    assert ref.corruption_rule(0.136) == "random"
    assert ref.corruption_rule(0.15) == "none"
    corrupted, chosen = ref.corrupt_prompt(
        [CLS, 10, 11, 12, SEP], [False, True, True, True, True], [0.0, 0.01, 0.125, 0.14, 0.5], [0, 0, 0, 7, 0], MASK
    )
    assert corrupted == [CLS, MASK, 11, 7, SEP]
    assert chosen == [False, True, True, True, False]


# ---------------------------------------------------------------------------------------------------------------------
# Tiny model
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def params():
    from transformers import BertConfig, BertModel
    from transformers.models.bert.modeling_bert import BertPredictionHeadTransform

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=60,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    bert = BertModel(config, add_pooling_layer=False).eval()
    transform = BertPredictionHeadTransform(config).eval()
    vocab = OFFSET + L + D + 1
    return ref.HPTParams(
        bert=bert,
        word_embeddings=torch.randn(vocab, 32) * 0.5,
        transform=transform,
        bias=torch.randn(vocab) * 0.1,
        label_bias=torch.randn(L) * 0.1,
        graph_layers=make_layers(32, 1),
        label_offset=OFFSET,
        cls_id=CLS,
        sep_id=SEP,
        mask_id=MASK,
        pad_id=PAD,
    )


BATCH_IDS = torch.tensor([[CLS, 10, 11, 12, SEP], [CLS, 13, SEP, PAD, PAD]])
BATCH_MASK = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])


@torch.no_grad()
def test_label_scores_by_hand(params):
    scores = ref.label_scores(params, PARENTS, BATCH_IDS, BATCH_MASK, True, 64, "label", directed=False)
    assert scores.shape == (2, L)
    # Example 1 alone, rebuilt by hand with the dense graph form.
    prompt = [CLS, 13, SEP, V1, PRED, V2, PRED, V3, PRED, SEP]
    nodes = params.word_embeddings[OFFSET : OFFSET + L + D]
    graph = dense_gat(params.graph_layers, nodes, ref.graph_adjacency(PARENTS, False), "layer_norm")
    rows = [graph[L + t - V1] if V1 <= t <= V3 else params.word_embeddings[t] for t in prompt]
    hidden = params.bert(
        inputs_embeds=torch.stack(rows)[None], attention_mask=torch.ones(1, len(prompt), dtype=torch.long)
    ).last_hidden_state[0]
    pred_at = {1: 4, 2: 6, 3: 8}
    for label, depth in enumerate([1, 1, 2, 2, 3]):
        h = params.transform(hidden[pred_at[depth]])
        expected = h @ params.word_embeddings[OFFSET + label] + params.label_bias[label]
        torch.testing.assert_close(scores[1, label], expected, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_label_scores_switches(params):
    base = ref.label_scores(params, PARENTS, BATCH_IDS, BATCH_MASK, True, 64, "label")
    mlm_plus = ref.label_scores(params, PARENTS, BATCH_IDS, BATCH_MASK, True, 64, "mlm_plus_label")
    torch.testing.assert_close(mlm_plus - base, params.bias[OFFSET : OFFSET + L].expand(2, L), atol=1e-5, rtol=0)
    code_layout = ref.label_scores(params, PARENTS, BATCH_IDS, BATCH_MASK, False, 64, "label")
    assert not torch.allclose(code_layout, base)
    directed = ref.label_scores(params, PARENTS, BATCH_IDS, BATCH_MASK, True, 64, "label", directed=True)
    assert not torch.allclose(directed, base)
    # Padding invariance: example 1 scored alone equals its row in the batch.
    alone = ref.label_scores(params, PARENTS, BATCH_IDS[1:, :3], BATCH_MASK[1:, :3], True, 64, "label")
    torch.testing.assert_close(alone[0], base[1], atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_mlm_loss_by_hand(params):
    prompt_ids, prompt_mask = ref.build_prompt_batch(params, PARENTS, BATCH_IDS, BATCH_MASK, True, 64)
    corrupted = prompt_ids.clone()
    chosen = torch.zeros_like(prompt_ids, dtype=torch.bool)
    chosen[0, 2] = True
    corrupted[0, 2] = MASK
    chosen[1, 1] = True
    loss = ref.mlm_loss(params, PARENTS, corrupted, prompt_ids, chosen, prompt_mask)
    hidden = ref.encode(params, PARENTS, corrupted, prompt_mask, False, "layer_norm")
    logits = params.transform(hidden) @ params.word_embeddings.T + params.bias
    expected = F.cross_entropy(logits[chosen], prompt_ids[chosen])
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)
    nothing = ref.mlm_loss(params, PARENTS, corrupted, prompt_ids, torch.zeros_like(chosen), prompt_mask)
    assert float(nothing) == 0.0
    assert float(ref.total_loss(torch.tensor(1.5), loss, 0.5)) == pytest.approx(1.5 + 0.5 * float(loss))


def test_gradients_reach_graph_and_biases(params):
    layer = {key: value.clone().requires_grad_(True) for key, value in params.graph_layers[0].items()}
    label_bias = params.label_bias.clone().requires_grad_(True)
    local = ref.HPTParams(**{**vars(params), "graph_layers": [layer], "label_bias": label_bias})
    scores = ref.label_scores(local, PARENTS, BATCH_IDS, BATCH_MASK, True, 64, "label")
    gold = torch.tensor([[1.0, 0.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0, 1.0]])
    ref.classification_loss(scores, gold, PARENTS, "per_depth").backward()
    assert layer["weight"].grad is not None and float(layer["weight"].grad.abs().sum()) > 0
    assert label_bias.grad is not None and float(label_bias.grad.abs().sum()) > 0
