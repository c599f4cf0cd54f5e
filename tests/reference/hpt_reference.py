"""Clean-room reference implementation of HPT (Wang et al., EMNLP 2022, "Hierarchy-aware Prompt Tuning").

Written from the paper (§4.1-4.2, Eq. 1-11, Table 5) and from the project's design notes
(``shared/design/reference-notes.md``: table "Paper versus code" rows P1-P7 and section 2 "HPT").
It is meant to be READ next to the paper: plain loops over examples, depths, labels and graph nodes,
no vectorisation tricks, no speed concerns.  Every switch names which side (paper or authors' code)
each of its values follows.

Conventions used throughout
---------------------------
* ``label_parents[l]`` lists the parents of label ``l`` (``[]`` = top level; several parents = DAG).
  Label ids are level-major, ``0 .. L-1``.
* Depth (1-based) of a label = 1 + max depth of its parents (the longest path from the top level);
  ``D`` = the maximum depth = number of template slots.
* Extended vocabulary (rows of ``HPTParams.word_embeddings``)::

      [ base vocab (label_offset rows) | L label words | V_1 .. V_D | [PRED] ]

  label l -> ``label_offset + l``; V_d -> ``label_offset + L + d - 1``; [PRED] -> ``label_offset + L + D``.
* Graph nodes: labels ``0 .. L-1`` then virtual nodes t_1 .. t_D at ``L .. L+D-1``.
* All model pieces are evaluated with dropout off: the caller passes ``bert`` in eval mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

Tensor = torch.Tensor

LEAKY_RELU_SLOPE = 0.2  # GAT attention non-linearity (torch_geometric GATConv default, notes §2.5)
GRAPH_LAYER_NORM_EPS = 1e-5  # nn.LayerNorm default used by the authors' graph layer (notes §2.5)
MLM_PROBABILITY = 0.15  # share of eligible tokens chosen for the MLM loss (§4.2, notes §2.6)


@dataclass
class HPTParams:
    """All parameters the HPT forward pass needs (paper §4.1; notes §2.4-2.6).

    * ``bert``: a stock ``transformers`` ``BertModel``; called with ``inputs_embeds`` so that its own
      word-embedding table is never used.
    * ``word_embeddings``: ``[V, H]`` extended table (layout in the module docstring).  Its rows are the
      BERT words (Eq. 1 X), the label words v_i (verbalizer, §4.1.1), the template embeddings t_i and e_P.
    * ``transform``: the MLM head transform (dense, GELU, LayerNorm) applied before the decoder.
    * ``bias``: ``[V]`` MLM decoder bias; the decoder weight is ``word_embeddings`` itself (tied, RAW rows).
    * ``label_bias``: ``[L]`` the extra per-label verbalizer bias (b_i after Eq. 10; notes P3).
    * ``graph_layers``: one dict per GAT layer with ``weight`` [H,H], ``att_src`` [H], ``att_dst`` [H],
      ``bias`` [H], ``ln_weight`` [H], ``ln_bias`` [H] (notes §2.5).
    """

    bert: Any
    word_embeddings: Tensor
    transform: Any
    bias: Tensor
    label_bias: Tensor
    graph_layers: list
    label_offset: int
    cls_id: int
    sep_id: int
    mask_id: int
    pad_id: int


# ---------------------------------------------------------------------------------------------------------------------
# Taxonomy bookkeeping
# ---------------------------------------------------------------------------------------------------------------------


def label_depths(label_parents: list[list[int]]) -> list[int]:
    """1-based depth of every label: the layer m of §4.1.1 / Eq. 3 (N_m = labels of depth m).

    Depth = 1 + max depth of the parents, so that in a DAG a label sits below ALL its parents.
    (Notes §2.2: the authors' code keeps only the last parent seen; for a tree the two agree.)
    """
    num_labels = len(label_parents)
    depths: list[int | None] = [None] * num_labels
    in_progress = [False] * num_labels

    def depth_of(label: int) -> int:
        known = depths[label]
        if known is not None:
            return known
        if in_progress[label]:
            raise ValueError(f"label hierarchy has a cycle through label {label}")
        in_progress[label] = True
        parent_depths = [depth_of(parent) for parent in label_parents[label]]
        in_progress[label] = False
        result = 1 + max(parent_depths) if parent_depths else 1
        depths[label] = result
        return result

    for label in range(num_labels):
        for parent in label_parents[label]:
            if not 0 <= parent < num_labels or parent == label:
                raise ValueError(f"label {label} has an invalid parent {parent}")
        depth_of(label)
    return [int(d) for d in depths]  # type: ignore[arg-type]


def num_depths(label_parents: list[list[int]]) -> int:
    """D, the number of hierarchy layers = number of [V_d] [PRED] pairs in the template (§4.1.1, Table 5)."""
    depths = label_depths(label_parents)
    return max(depths) if depths else 0


def labels_at_depth(label_parents: list[list[int]]) -> list[list[int]]:
    """N_m for m = 1..D (Eq. 3, Eq. 10): ascending label ids of each depth; index 0 holds depth 1."""
    depths = label_depths(label_parents)
    groups: list[list[int]] = [[] for _ in range(max(depths) if depths else 0)]
    for label, depth in enumerate(depths):
        groups[depth - 1].append(label)
    return groups


def virtual_token_id(label_offset: int, num_labels: int, depth: int) -> int:
    """Vocabulary id of the template word [V_depth] (Eq. 1 t_depth; notes §2.3), depth 1-based."""
    return label_offset + num_labels + depth - 1


def pred_token_id(label_offset: int, num_labels: int, n_depths: int) -> int:
    """Vocabulary id of the [PRED] token (Eq. 1 e_P; notes §2.3): the row after the D virtual tokens."""
    return label_offset + num_labels + n_depths


# ---------------------------------------------------------------------------------------------------------------------
# 1. Template (Table 5, notes P1 / §2.3)
# ---------------------------------------------------------------------------------------------------------------------


def build_template(
    input_ids: list[int],
    n_depths: int,
    label_offset: int,
    num_labels: int,
    cls_id: int,
    sep_id: int,
    text_sep: bool,
    max_length: int,
) -> list[int]:
    """Build the HPT prompt of one example (§4.1.1, Table 5; notes P1 and §2.3).

    ``input_ids`` is one tokenised text ``[CLS] words [SEP]`` without padding.

    * ``text_sep=True`` (paper, Table 5): ``[CLS] words [SEP] V_1 [PRED] V_2 [PRED] ... V_D [PRED] [SEP]``.
    * ``text_sep=False`` (authors' code, notes §2.3): the text's final [SEP] is dropped,
      ``[CLS] words V_1 [PRED] ... V_D [PRED] [SEP]``.

    If the prompt is longer than ``max_length``, words are cut from the END of the text; [CLS], the text
    [SEP] (paper layout) and the whole template are always kept.  The word budget is therefore
    ``max_length - 2D - 2`` (code layout; WOS: 506 for 512) or ``max_length - 2D - 3`` (paper layout).
    """
    if len(input_ids) < 2 or input_ids[0] != cls_id or input_ids[-1] != sep_id:
        raise ValueError("input_ids must be one unpadded '[CLS] words [SEP]' sequence")
    words = list(input_ids[1:-1])
    fixed = 1 + (1 if text_sep else 0) + 2 * n_depths + 1  # [CLS] + text [SEP]? + template + final [SEP]
    budget = max_length - fixed
    if budget < 0:
        raise ValueError(f"max_length={max_length} cannot hold the {fixed} special/template tokens")
    words = words[:budget]

    prompt = [cls_id, *words]
    if text_sep:
        prompt.append(sep_id)
    for depth in range(1, n_depths + 1):
        prompt.append(virtual_token_id(label_offset, num_labels, depth))
        prompt.append(pred_token_id(label_offset, num_labels, n_depths))
    prompt.append(sep_id)
    return prompt


def pred_positions(prompt: list[int], pred_id: int) -> list[int]:
    """Index of every [PRED] in a prompt, in depth order: position of h_P^m in Eq. 2 for m = 1..D."""
    return [index for index, token in enumerate(prompt) if token == pred_id]


def text_word_count(prompt: list[int], v1_id: int, text_sep: bool) -> int:
    """Number of text word tokens kept in a prompt (the x of Table 5 without [CLS]/[SEP]).

    Words sit at positions ``1 .. count``; they end right before [V_1] (code layout) or right before the
    text [SEP] that precedes [V_1] (paper layout).
    """
    first_virtual = prompt.index(v1_id)
    return first_virtual - 1 - (1 if text_sep else 0)


def build_prompt_batch(
    params: HPTParams,
    label_parents: list[list[int]],
    input_ids: Tensor,
    attention_mask: Tensor,
    text_sep: bool,
    max_length: int,
) -> tuple[Tensor, Tensor]:
    """Build the prompts of a batch (Table 5, notes P1) and right-pad them to the batch maximum.

    ``input_ids``/``attention_mask`` are ``[B, S]`` right-padded ``[CLS] words [SEP]``.  Returns
    ``(prompt_ids [B, N], prompt_mask [B, N])``: padding uses ``pad_id`` with mask 0.  (The authors pad to
    exactly 512; with the padding masked out and positions counted from 0 this does not change any output.)
    """
    num_labels = len(label_parents)
    n_depths = num_depths(label_parents)
    prompts: list[list[int]] = []
    for example in range(input_ids.shape[0]):
        length = int(attention_mask[example].sum().item())
        ids = [int(token) for token in input_ids[example, :length].tolist()]
        prompts.append(
            build_template(
                ids, n_depths, params.label_offset, num_labels, params.cls_id, params.sep_id, text_sep, max_length
            )
        )
    width = max(len(prompt) for prompt in prompts)
    prompt_ids = torch.full((len(prompts), width), params.pad_id, dtype=torch.long)
    prompt_mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for example, prompt in enumerate(prompts):
        for position, token in enumerate(prompt):
            prompt_ids[example, position] = token
            prompt_mask[example, position] = 1
    return prompt_ids, prompt_mask


# ---------------------------------------------------------------------------------------------------------------------
# 2-3. Hierarchy injection graph (§4.1.2, Eq. 4-5; notes P5 / §2.5)
# ---------------------------------------------------------------------------------------------------------------------


def graph_adjacency(label_parents: list[list[int]], directed: bool) -> Tensor:
    """Adjacency of the label graph plus the D virtual nodes (§4.1.2; notes §2.5 edge direction).

    Nodes: labels ``0..L-1``, then virtual nodes t_1..t_D at ``L..L+D-1``.  ``A[i, j] = True`` means node
    ``i`` RECEIVES a message from node ``j``.  Self-loops are always present (Eq. 4 sums over N(u) ∪ {u}).

    * ``directed=False`` (paper §4.1.2, project default "undirected"): every parent-child edge in both
      directions (all parents of a DAG label), and t_d <-> every label of depth d in both directions.
    * ``directed=True`` (authors' code, notes §2.5 [QUIRK]): a child receives from each parent, a label
      receives from its depth's virtual node, nothing else; a virtual node hears only itself.
    """
    num_labels = len(label_parents)
    depths = label_depths(label_parents)
    n_nodes = num_labels + (max(depths) if depths else 0)
    adjacency = torch.zeros((n_nodes, n_nodes), dtype=torch.bool)
    for node in range(n_nodes):
        adjacency[node, node] = True
    for child in range(num_labels):
        for parent in label_parents[child]:
            adjacency[child, parent] = True
            if not directed:
                adjacency[parent, child] = True
    for label in range(num_labels):
        virtual = num_labels + depths[label] - 1
        adjacency[label, virtual] = True
        if not directed:
            adjacency[virtual, label] = True
    return adjacency


def gat_layer(layer: dict, nodes: Tensor, adjacency: Tensor) -> Tensor:
    """One single-head GAT convolution (notes §2.5 "GAT for a clean re-implementation"; paper Eq. 4 names GAT).

    x' = W x (no bias);  alpha_ij = softmax over {j : A[i, j]} of LeakyReLU_0.2(a_src . x'_j + a_dst . x'_i);
    out_i = sum_j alpha_ij x'_j + b.  (Eq. 4 as printed is a GCN-like normalised sum with a ReLU; notes P5:
    the model is a GAT, the ReLU is not applied.)
    """
    weight, att_src, att_dst, bias = layer["weight"], layer["att_src"], layer["att_dst"], layer["bias"]
    projected = nodes @ weight.T
    outputs = []
    for i in range(nodes.shape[0]):
        neighbours = [j for j in range(nodes.shape[0]) if bool(adjacency[i, j])]
        raw_scores = []
        for j in neighbours:
            score = torch.dot(att_src, projected[j]) + torch.dot(att_dst, projected[i])
            raw_scores.append(F.leaky_relu(score, negative_slope=LEAKY_RELU_SLOPE))
        alpha = torch.softmax(torch.stack(raw_scores), dim=0)
        message = torch.zeros_like(projected[i])
        for k, j in enumerate(neighbours):
            message = message + alpha[k] * projected[j]
        outputs.append(message + bias)
    return torch.stack(outputs)


def graph_forward(params: HPTParams, nodes: Tensor, adjacency: Tensor, residual: str) -> Tensor:
    """Run the stacked graph encoder over the node features (§4.1.2, Eq. 4-5; notes P5 / §2.5).

    For each layer: ``out = GAT(x)`` (see :func:`gat_layer`), then

    * ``residual="layer_norm"`` (authors' code, notes §2.5): ``x <- LayerNorm(x + out)`` (eps 1e-5);
    * ``residual="plain"`` (paper Eq. 5, t'_i = t_i + g_ti): ``x <- x + out``.

    Dropout is off (evaluation).  ``nodes`` is ``[N, H]`` = label word rows ‖ template rows t_1..t_D.
    """
    if residual not in ("layer_norm", "plain"):
        raise ValueError(f"unknown residual mode {residual!r}")
    hidden = nodes
    for layer in params.graph_layers:
        out = gat_layer(layer, hidden, adjacency)
        if residual == "layer_norm":
            hidden = F.layer_norm(
                hidden + out, (hidden.shape[-1],), layer["ln_weight"], layer["ln_bias"], eps=GRAPH_LAYER_NORM_EPS
            )
        else:
            hidden = hidden + out
    return hidden


def graph_node_features(params: HPTParams, label_parents: list[list[int]]) -> Tensor:
    """First-layer node features (§4.1.2): label word v_i for label nodes, template embedding t_i for t_i."""
    num_labels = len(label_parents)
    n_depths = num_depths(label_parents)
    start = params.label_offset
    return params.word_embeddings[start : start + num_labels + n_depths]


def injected_template_rows(
    params: HPTParams, label_parents: list[list[int]], directed: bool, residual: str
) -> list[Tensor]:
    """t'_1..t'_D (Eq. 5): the graph output rows of the virtual nodes that replace t_d in Eq. 1."""
    num_labels = len(label_parents)
    adjacency = graph_adjacency(label_parents, directed)
    graph_out = graph_forward(params, graph_node_features(params, label_parents), adjacency, residual)
    return [graph_out[num_labels + depth - 1] for depth in range(1, num_depths(label_parents) + 1)]


# ---------------------------------------------------------------------------------------------------------------------
# Encoder pass shared by the classifier and the MLM loss (Eq. 1-2)
# ---------------------------------------------------------------------------------------------------------------------


def prompt_embeddings(
    params: HPTParams, label_parents: list[list[int]], prompt_ids: Tensor, directed: bool, residual: str
) -> Tensor:
    """Input embeddings T of Eq. 1 with the hierarchy injection of Eq. 5, ``[B, N, H]``.

    Every token takes its row of ``word_embeddings`` except [V_d], which takes t'_d (row ``L+d-1`` of the
    graph output).  Label ids never occur in a prompt, so only the virtual rows of the graph output are used.
    """
    num_labels = len(label_parents)
    n_depths = num_depths(label_parents)
    template_rows = injected_template_rows(params, label_parents, directed, residual)
    first_virtual = virtual_token_id(params.label_offset, num_labels, 1)
    batch = []
    for example in range(prompt_ids.shape[0]):
        rows = []
        for token in prompt_ids[example].tolist():
            if first_virtual <= token < first_virtual + n_depths:
                rows.append(template_rows[token - first_virtual])
            else:
                rows.append(params.word_embeddings[token])
        batch.append(torch.stack(rows))
    return torch.stack(batch)


def encode(
    params: HPTParams,
    label_parents: list[list[int]],
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    directed: bool,
    residual: str,
) -> Tensor:
    """Hidden states H of Eq. 2, ``[B, N, H]``: BERT over the injected embeddings, token types 0, positions 0..N-1."""
    embeddings = prompt_embeddings(params, label_parents, prompt_ids, directed, residual)
    token_type_ids = torch.zeros_like(prompt_ids)
    output = params.bert(inputs_embeds=embeddings, attention_mask=prompt_mask, token_type_ids=token_type_ids)
    return output.last_hidden_state


# ---------------------------------------------------------------------------------------------------------------------
# 4. Verbalizer scores (Eq. 3, Eq. 10; notes P3 / §2.6)
# ---------------------------------------------------------------------------------------------------------------------


def label_scores_from_prompts(
    params: HPTParams,
    label_parents: list[list[int]],
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    verbalizer_bias: str,
    directed: bool = False,
    residual: str = "layer_norm",
) -> Tensor:
    """Label scores ``[B, L]`` from already-built prompts (Eq. 3 and Eq. 10; notes P3 and §2.6).

    Label l of depth m is scored only at the m-th [PRED] (Verb_m of Eq. 3):
    ``s_l = transform(h_P^m) . v_l + bias term``, with v_l the RAW row ``word_embeddings[label_offset + l]``
    (the decoder side never sees the graph, notes §2.4).  Bias term:

    * ``verbalizer_bias="label"`` (paper, b after Eq. 10): ``label_bias[l]`` only;
    * ``verbalizer_bias="mlm_plus_label"`` (authors' code, P3 / §2.6): ``bias[label_offset + l] + label_bias[l]``.

    (The paper writes b_i^m per label and layer; as each label has exactly one layer this is one bias per label.)
    """
    if verbalizer_bias not in ("label", "mlm_plus_label"):
        raise ValueError(f"unknown verbalizer_bias {verbalizer_bias!r}")
    num_labels = len(label_parents)
    n_depths = num_depths(label_parents)
    depths = label_depths(label_parents)
    pred_id = pred_token_id(params.label_offset, num_labels, n_depths)
    hidden = encode(params, label_parents, prompt_ids, prompt_mask, directed, residual)

    batch_scores = []
    for example in range(prompt_ids.shape[0]):
        positions = pred_positions(prompt_ids[example].tolist(), pred_id)
        if len(positions) != n_depths:
            raise ValueError(f"example {example} has {len(positions)} [PRED] tokens, expected {n_depths}")
        scores = []
        for label in range(num_labels):
            pred_hidden = hidden[example, positions[depths[label] - 1]]
            label_word = params.word_embeddings[params.label_offset + label]
            score = torch.dot(params.transform(pred_hidden), label_word) + params.label_bias[label]
            if verbalizer_bias == "mlm_plus_label":
                score = score + params.bias[params.label_offset + label]
            scores.append(score)
        batch_scores.append(torch.stack(scores))
    return torch.stack(batch_scores)


def label_scores(
    params: HPTParams,
    label_parents: list[list[int]],
    input_ids: Tensor,
    attention_mask: Tensor,
    text_sep: bool,
    max_length: int,
    verbalizer_bias: str,
    directed: bool = False,
    residual: str = "layer_norm",
) -> Tensor:
    """Label scores ``[B, L]`` of tokenised texts (§4.1, Eq. 1-5 and Eq. 10; Table 5; notes P1, P3, P5).

    Builds every prompt (:func:`build_template`), pads to the batch maximum, injects t'_d (Eq. 5), runs BERT and
    scores each label at its own depth's [PRED] (:func:`label_scores_from_prompts`).  ``directed`` selects the
    graph of :func:`graph_adjacency` (default: undirected, paper) and ``residual`` the graph residual of
    :func:`graph_forward` (default: "layer_norm", the authors' graph layer).
    """
    prompt_ids, prompt_mask = build_prompt_batch(
        params, label_parents, input_ids, attention_mask, text_sep, max_length
    )
    return label_scores_from_prompts(
        params, label_parents, prompt_ids, prompt_mask, verbalizer_bias, directed=directed, residual=residual
    )


# ---------------------------------------------------------------------------------------------------------------------
# 5. Zero-bounded multi-label cross-entropy (Eq. 9-11; notes P2 / §2.6)
# ---------------------------------------------------------------------------------------------------------------------


def zmlce(scores: Tensor, gold: Tensor, groups: list[list[int]]) -> Tensor:
    """Sum over groups g of Eq. 9/10: ``log(1 + sum_{neg in g} e^{s}) + log(1 + sum_{pos in g} e^{-s})``.

    ``scores``/``gold`` are ``[L]`` for one example (gold 0/1).  Computed in float64 in the plain form (no
    log-sum-exp shift; fine for |s| < ~700) and returned as a scalar in ``scores.dtype`` (differentiable).
    A group with no positive (or no negative) label contributes log(1 + 0) = 0 for that half.
    """
    total = torch.zeros((), dtype=torch.float64)
    for group in groups:
        negative_sum = torch.zeros((), dtype=torch.float64)
        positive_sum = torch.zeros((), dtype=torch.float64)
        for label in group:
            score = scores[label].to(torch.float64)
            target = float(gold[label])
            if target not in (0.0, 1.0):
                raise ValueError("gold must be 0/1")
            if target == 1.0:
                positive_sum = positive_sum + torch.exp(-score)
            else:
                negative_sum = negative_sum + torch.exp(score)
        total = total + torch.log1p(negative_sum) + torch.log1p(positive_sum)
    return total.to(scores.dtype)


def loss_groups(label_parents: list[list[int]], mode: str) -> list[list[int]]:
    """The label groups over which ZMLCE is taken (notes P2 / §2.6).

    * ``"per_depth"`` (paper Eq. 10-11): one group N_m per depth m, so the loss is sum_m L^m_ZMLCE;
    * ``"per_example_global"`` (authors' code, notes §2.6 [QUIRK]): a single group of all L labels.
    """
    if mode == "per_depth":
        return labels_at_depth(label_parents)
    if mode == "per_example_global":
        return [list(range(len(label_parents)))]
    raise ValueError(f"unknown ZMLCE mode {mode!r}")


def classification_loss(scores: Tensor, gold: Tensor, label_parents: list[list[int]], mode: str) -> Tensor:
    """ZMLCE part of Eq. 11, averaged over the examples of the batch (notes P2 / §2.6).

    ``mode="per_depth"``: sum over depths of Eq. 10 per example (paper); ``mode="per_example_global"``: one
    Eq. 9 over all labels per example (authors' code).  Both: mean over the B examples.
    """
    groups = loss_groups(label_parents, mode)
    per_example = [zmlce(scores[example], gold[example], groups) for example in range(scores.shape[0])]
    return torch.stack(per_example).mean()


# ---------------------------------------------------------------------------------------------------------------------
# 6. MLM loss (Eq. 11, §4.2 "mask 15% words"; notes P4 / §2.6)
# ---------------------------------------------------------------------------------------------------------------------


def mlm_eligible(prompt_ids: list[int], num_words: int, label_offset: int, pad_id: int, mode: str,
                 special_ids: tuple[int, ...] = ()) -> list[bool]:
    """Which prompt positions may be corrupted for the MLM loss (notes P4 / §2.6).

    ``prompt_ids`` is one prompt (trailing ``pad_id`` padding allowed); ``num_words`` the number of text word
    tokens kept in it (see :func:`text_word_count`), which occupy positions ``1 .. num_words``.

    * ``mode="text"`` (paper §4.2, "15% words of the text"): exactly the text's word tokens; never [CLS], the
      text [SEP], the template ([V_d], [PRED], final [SEP]) or padding. A special token inside the text (the
      inner [SEP] of a sentence pair, any id in ``special_ids``) is no word either.
    * ``mode="ordinary"`` (authors' code, notes §2.6): every non-pad token with id < ``label_offset``; this
      includes [CLS], the text [SEP] when present (paper layout) and the template's final [SEP].
    """
    if mode == "text":
        return [1 <= position <= num_words and token not in special_ids for position, token in enumerate(prompt_ids)]
    if mode == "ordinary":
        return [token != pad_id and token < label_offset for token in prompt_ids]
    raise ValueError(f"unknown MLM eligibility mode {mode!r}")


def corruption_rule(u: float, p: float = MLM_PROBABILITY) -> str:
    """BERT's 80/10/10 corruption of one eligible token, in the project's documented convention (§4.2; notes §2.6).

    Given the token's uniform draw ``u`` and ``p = 0.15``: the token is chosen iff ``u < p``; then with
    ``share = u / p``: ``share < 0.8`` -> ``"mask"`` ([MASK]), ``0.8 <= share < 0.9`` -> ``"keep"`` (the
    original id), ``share >= 0.9`` -> ``"random"`` (a random id).  Not chosen -> ``"none"``.  This is the
    project's convention: the authors' code selects ``u > 0.85`` and orders keep/mask/random differently
    (notes §2.6); the shares are the same 80/10/10.
    """
    if u >= p:
        return "none"
    share = u / p
    if share < 0.8:
        return "mask"
    if share < 0.9:
        return "keep"
    return "random"


def corrupt_prompt(
    prompt_ids: list[int],
    eligible: list[bool],
    uniforms: list[float],
    random_ids: list[int],
    mask_id: int,
    p: float = MLM_PROBABILITY,
) -> tuple[list[int], list[bool]]:
    """Apply :func:`corruption_rule` to every eligible position of one prompt (§4.2; notes §2.6).

    ``uniforms[i]`` is position i's draw, ``random_ids[i]`` the replacement used if the rule says "random"
    (drawing it is the caller's business; the authors draw from the base vocabulary).  Returns
    ``(corrupted ids, chosen flags)``; the MLM loss is taken at the chosen positions only.
    """
    corrupted = list(prompt_ids)
    chosen = [False] * len(prompt_ids)
    for position, token in enumerate(prompt_ids):
        if not eligible[position]:
            continue
        action = corruption_rule(uniforms[position], p)
        if action == "none":
            continue
        chosen[position] = True
        if action == "mask":
            corrupted[position] = mask_id
        elif action == "random":
            corrupted[position] = random_ids[position]
        else:
            corrupted[position] = token
    return corrupted, chosen


def mlm_loss(
    params: HPTParams,
    label_parents: list[list[int]],
    corrupted_prompt_ids: Tensor,
    original_prompt_ids: Tensor,
    chosen: Tensor,
    prompt_mask: Tensor,
    directed: bool = False,
    residual: str = "layer_norm",
) -> Tensor:
    """L_MLM of Eq. 11 (§4.2; notes P4 / §2.6).

    Runs the model on the corrupted prompts (graph injection as for the scores), computes logits over the WHOLE
    extended vocabulary ``transform(h) @ word_embeddings.T + bias`` (tied, raw rows) and averages the
    cross-entropy against the original ids over all chosen positions of the batch (token-level mean).
    Returns 0 when no position is chosen.
    """
    hidden = encode(params, label_parents, corrupted_prompt_ids, prompt_mask, directed, residual)
    losses = []
    for example in range(corrupted_prompt_ids.shape[0]):
        for position in range(corrupted_prompt_ids.shape[1]):
            if not bool(chosen[example, position]):
                continue
            logits = params.word_embeddings @ params.transform(hidden[example, position]) + params.bias
            target = int(original_prompt_ids[example, position])
            losses.append(-torch.log_softmax(logits, dim=-1)[target])
    if not losses:
        return torch.zeros((), dtype=params.word_embeddings.dtype)
    return torch.stack(losses).mean()


def total_loss(classification: Tensor, mlm: Tensor, mlm_weight: float = 1.0) -> Tensor:
    """L_all of Eq. 11: ZMLCE part + ``mlm_weight`` * L_MLM (paper and authors' code: weight 1, notes §2.6)."""
    return classification + mlm_weight * mlm


# ---------------------------------------------------------------------------------------------------------------------
# 7. Decoding (§4.2 "select labels with scores greater than 0"; notes §2.7)
# ---------------------------------------------------------------------------------------------------------------------


def decode(scores: Tensor, threshold: float = 0.5) -> list[set[int]]:
    """Predicted label sets (§4.2 last paragraph; notes §2.7).

    Label l is selected when its SCORE exceeds ``log(t / (1 - t))`` (the logit of the probability threshold
    ``t``; t = 0.5 gives "score > 0", the paper's rule).  The comparison is on the score, never on a rounded
    probability.  Each label is scored at its own depth, so the result is the union over depths; no
    parent-consistency repair.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError("threshold must lie in (0, 1)")
    cutoff = math.log(threshold / (1.0 - threshold))
    predictions = []
    for example in range(scores.shape[0]):
        selected = set()
        for label in range(scores.shape[1]):
            if float(scores[example, label]) > cutoff:
                selected.add(label)
        predictions.append(selected)
    return predictions
