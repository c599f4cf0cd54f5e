"""Clean-room reference implementation of HBGL (Jiang et al., EMNLP 2022) for the test suite.

Written only from the paper text and the project's design notes (``reference-notes.md`` rows H1-H13 and
sections 1.4-1.6, ``hf-notes.md`` section 4.4). It is deliberately slow and plain: explicit loops over
examples, levels and labels, one BERT call per sequence, no caching. It imports nothing from the package
under test.

Conventions used throughout:

* Label ids are level-major (a parent's id is smaller than its child's). ``label_parents[i]`` lists the
  parents of label ``i``; ``[]`` means a top-level label (child of the implicit root). Several parents
  make a DAG.
* Level of a label (1-based) = 1 + max(level of its parents); top level = 1. Depth ``D`` = max level.
* Attention masks are built as boolean "may attend" matrices ``[query, key]`` and converted to the
  additive float format (0 where allowed, ``torch.finfo(dtype).min`` elsewhere) before they reach the
  eager BertModel (hf-notes 4.4: a boolean 4D mask is silently wrong under eager attention).
* The reference assumes the model is in eval mode (no dropout), so that looping per example gives the
  same numbers as a batched implementation.
"""

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

# ---------------------------------------------------------------------------------------------------------------------
# Parameters and taxonomy helpers
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class HBGLParams:
    """Model parameters handed to the reference (reference-notes 1.4 "Hand-off", 1.5 "Head").

    ``bert`` is a stock ``transformers`` BertModel using EAGER attention. ``word_embeddings`` is the
    (tied) extended word-embedding matrix ``[V, H]``; label ``i`` is row ``label_offset + i``.
    ``transform`` is BERT's MLM head transform (dense, GELU, LayerNorm). ``bias`` is the full-vocab
    decoder bias ``[V]`` (local stage and decoding only; the global stage uses no bias, H4).
    """

    bert: Any
    word_embeddings: Tensor
    transform: Any
    bias: Tensor
    label_offset: int
    cls_id: int
    sep_id: int
    mask_id: int


def label_levels(label_parents: list[list[int]]) -> list[int]:
    """1-based level of every label: 1 + max(level of parents), top level 1 (HLevel in Eq. 1, 8)."""
    levels: list[int | None] = [None] * len(label_parents)

    def level_of(i: int, visiting: tuple[int, ...] = ()) -> int:
        known = levels[i]
        if known is not None:
            return known
        if i in visiting:
            raise ValueError(f"cycle in the taxonomy at label {i}")
        parents = label_parents[i]
        value = 1 if not parents else 1 + max(level_of(p, (*visiting, i)) for p in parents)
        levels[i] = value
        return value

    return [level_of(i) for i in range(len(label_parents))]


def label_depth(label_parents: list[list[int]]) -> int:
    """Depth D of the taxonomy = maximum level (D in Eq. 5, 7, 8; 0 for an empty taxonomy)."""
    levels = label_levels(label_parents)
    return max(levels) if levels else 0


def label_children(label_parents: list[list[int]]) -> list[list[int]]:
    """Children lists derived from the parent lists (the edge sets E-> / E<- of the paper, section 3)."""
    children: list[list[int]] = [[] for _ in label_parents]
    for child, parents in enumerate(label_parents):
        for parent in parents:
            children[parent].append(child)
    return children


def additive_mask(may_attend: Tensor, dtype: torch.dtype) -> Tensor:
    """Boolean ``[N, N]`` "may attend" (query, key) -> additive float mask ``[1, 1, N, N]`` (hf-notes 4.4).

    0 where the query may attend the key, ``torch.finfo(dtype).min`` elsewhere; ``dtype`` is the
    hidden-state dtype. A boolean 4D mask would be added as +1/0 by eager attention (silently wrong).
    """
    mask = torch.zeros(may_attend.shape, dtype=dtype, device=may_attend.device)
    mask = mask.masked_fill(~may_attend, torch.finfo(dtype).min)
    return mask.unsqueeze(0).unsqueeze(0)


def _run_bert(params: HBGLParams, embeds: Tensor, position_ids: Tensor, token_type_ids: Tensor, may: Tensor) -> Tensor:
    """One BERT encoder pass over a single sequence ``[N, H]`` with a custom mask; returns ``[N, H]``.

    Shared by the global stage (Eq. 3), the local stage (Eq. 9) and decoding (Eq. 10).
    """
    device = params.word_embeddings.device
    dtype = embeds.dtype
    out = params.bert(
        inputs_embeds=embeds.unsqueeze(0),
        position_ids=position_ids.to(device).unsqueeze(0),
        token_type_ids=token_type_ids.to(device).unsqueeze(0),
        attention_mask=additive_mask(may.to(device), dtype),
    )
    return out.last_hidden_state[0]


def _head_scores(params: HBGLParams, hidden: Tensor, vocab_ids: list[int]) -> Tensor:
    """Local/decoding scores ``transform(h) @ W[ids]^T + b[ids]`` for one hidden vector (Eq. 9/10, H9).

    The tied word-embedding rows act as decoder weights; the bias is included (authors' code, H9).
    Returns logits (pre-sigmoid), shape ``[len(vocab_ids)]``.
    """
    ids = torch.tensor(vocab_ids, dtype=torch.long, device=params.word_embeddings.device)
    transformed = params.transform(hidden.unsqueeze(0))[0]
    return transformed @ params.word_embeddings[ids].T + params.bias[ids]


def _label_row(params: HBGLParams, label: int) -> Tensor:
    """Embedding row of label ``label`` in the extended word-embedding matrix (reference-notes 1.4 hand-off)."""
    return params.word_embeddings[params.label_offset + label]


# ---------------------------------------------------------------------------------------------------------------------
# 1. Global stage layout (Eq. 1-2, reference-notes 1.4, H2, H3)
# ---------------------------------------------------------------------------------------------------------------------


def global_stage_layout(label_parents: list[list[int]], self_attention: bool, segment_id: int) -> dict:
    """Layout of the label-graph sequence ``[CLS] label_0 ... label_{L-1} [SEP]`` (Eq. 1, Eq. 2, H2, H3, 1.4).

    Label ``i`` sits at position ``i + 1``.

    * ``position_ids`` ``[L+2]``: [CLS] 0, label = its 1-based level (p_{HLevel(v_i)} in Eq. 1), [SEP] D+1.
    * ``token_type_ids`` ``[L+2]``: [CLS]/[SEP] 0, labels ``segment_id`` (paper Eq. 1: 1; code: 0; H2).
    * ``may_attend`` ``[L+2, L+2]`` bool, rows = queries (Eq. 2 with A_ij = 0 meaning "may attend"):
      label i attends label j when j is a parent or a child of i; the diagonal i == j is allowed only when
      ``self_attention`` (paper: yes; code: no; H3). [CLS] stands for the root: top-level labels and
      [CLS] attend each other, and [CLS] attends itself iff ``self_attention``. The [SEP] row attends only
      itself, and no other row attends [SEP] (project convention; the authors' code leaves the row empty,
      which BERT's additive mask turns into uniform attention, 1.4 [QUIRK]).
    """
    num_labels = len(label_parents)
    levels = label_levels(label_parents)
    depth = max(levels) if levels else 0
    n = num_labels + 2
    sep_pos = n - 1

    position_ids = torch.zeros(n, dtype=torch.long)
    token_type_ids = torch.zeros(n, dtype=torch.long)
    for i in range(num_labels):
        position_ids[i + 1] = levels[i]
        token_type_ids[i + 1] = segment_id
    position_ids[sep_pos] = depth + 1

    may_attend = torch.zeros(n, n, dtype=torch.bool)
    for i, parents in enumerate(label_parents):
        if not parents:
            # the root ([CLS]) and a top-level label attend each other
            may_attend[i + 1, 0] = True
            may_attend[0, i + 1] = True
        for p in parents:
            may_attend[i + 1, p + 1] = True  # child -> parent (bottom-up path E<-)
            may_attend[p + 1, i + 1] = True  # parent -> child (top-down path E->)
        if self_attention:
            may_attend[i + 1, i + 1] = True
    may_attend[0, 0] = self_attention
    may_attend[sep_pos, sep_pos] = True
    return {"position_ids": position_ids, "token_type_ids": token_type_ids, "may_attend": may_attend}


# ---------------------------------------------------------------------------------------------------------------------
# 2. Global stage targets and mask ratio (Eq. 4, Alg. 1, H5, H6, 1.4 [BUG])
# ---------------------------------------------------------------------------------------------------------------------


def global_stage_targets(
    label_names: list[str], label_parents: list[list[int]], masked: list[bool], mode: str
) -> Tensor:
    """Multi-label targets of the masked-label prediction task (Eq. 4, Alg. 1 line 10, H5, 1.4 [BUG]).

    Returns a float tensor ``[M, L]``: one row per masked label, rows in ascending label id order,
    columns are label ids.

    ``mode == "intended"`` (paper Eq. 4): row of masked label i has 1 at column i; if i is a leaf (no
    children), also 1 at every other masked leaf j whose parent set equals i's parent set ("masked
    sibling leaves"; top-level leaves share the empty parent set, i.e. the root). Non-leaves: one-hot.

    ``mode == "hbgl_shifted"`` (authors' off-by-one, reference-notes 1.4 [BUG]). My reading of the notes:
    the authors keep their leaf and parent tables keyed by *sequence position* (label index + 1, root 0)
    but query them with *label indices*, where the label index is the rank of the label's name in
    ``sorted(label_names)`` (their vocabulary order, 1.2). Querying rank r therefore returns the facts of
    the label of rank r - 1, which I call ``prev(i)``; for rank 0 the query hits the root, which is never
    a leaf. Columns are written with the unshifted label, so:

    * the own column i is always 1;
    * if rank(i) == 0 (prev is the root, "not a leaf") nothing else is set;
    * otherwise, if prev(i) is a leaf, every other masked label j (j != i) whose prev(j) exists, is a
      leaf, and has the same parent set as prev(i) gets a 1 at column j.

    In other words the sibling grouping is computed on the shifted labels, consistently on both sides
    (the row side and the column side). Columns of the output are still this project's label ids, whatever
    the relation between ids and sorted names.
    """
    num_labels = len(label_parents)
    if len(label_names) != num_labels or len(masked) != num_labels:
        raise ValueError("label_names, label_parents and masked must have the same length")
    children = label_children(label_parents)
    masked_ids = [i for i in range(num_labels) if masked[i]]

    def is_leaf(i: int) -> bool:
        return len(children[i]) == 0

    def parent_set(i: int) -> frozenset[int]:
        return frozenset(label_parents[i])

    rows: list[Tensor] = []
    if mode == "intended":
        for i in masked_ids:
            row = torch.zeros(num_labels)
            row[i] = 1.0
            if is_leaf(i):
                for j in masked_ids:
                    if j != i and is_leaf(j) and parent_set(j) == parent_set(i):
                        row[j] = 1.0
            rows.append(row)
    elif mode == "hbgl_shifted":
        order = sorted(range(num_labels), key=lambda idx: label_names[idx])
        rank = [0] * num_labels
        for r, idx in enumerate(order):
            rank[idx] = r

        def prev(i: int) -> int | None:
            return order[rank[i] - 1] if rank[i] > 0 else None

        for i in masked_ids:
            row = torch.zeros(num_labels)
            row[i] = 1.0
            p = prev(i)
            if p is not None and is_leaf(p):
                for j in masked_ids:
                    if j == i:
                        continue
                    q = prev(j)
                    if q is not None and is_leaf(q) and parent_set(q) == parent_set(p):
                        row[j] = 1.0
            rows.append(row)
    else:
        raise ValueError(f"unknown target mode {mode!r}")
    if not rows:
        return torch.zeros(0, num_labels)
    return torch.stack(rows)


def global_stage_mask_ratio(progress: float, r_min: float, r_max: float) -> float:
    """Label mask ratio of the global stage (Alg. 1 lines 1-2 and 15, H6).

    Alg. 1 adds (r_M - r_m) / T_train after every step, i.e. a linear schedule: ``r_min`` at progress 0
    and ``r_max`` at progress 1 (progress = step / T_train). Not clamped. ``r_min == r_max`` gives the
    authors' constant ratio for WOS/NYT.
    """
    return r_min + (r_max - r_min) * progress


# ---------------------------------------------------------------------------------------------------------------------
# 3. Global stage loss (Eq. 3-4, H4)
# ---------------------------------------------------------------------------------------------------------------------


def global_stage_loss(
    params: HBGLParams,
    label_embeddings: Tensor,
    label_names: list[str],
    label_parents: list[list[int]],
    masked: Tensor,
    self_attention: bool,
    segment_id: int,
    mode: str,
) -> Tensor:
    """Masked-label prediction loss on the label graph (Eq. 3, Eq. 4, H4, reference-notes 1.4 "Loss").

    For each sequence b of ``masked`` ``[B, L]``: inputs = [W[cls], label rows (``label_embeddings[i]``,
    or W[mask] where ``masked[b, i]``), W[sep]] with the positions, token types and mask of
    :func:`global_stage_layout`; ``h = bert(...)``. For every masked label i:
    ``scores = transform(h_i) @ label_embeddings^T`` (MLM transform, no bias: the project's choice for H4),
    BCE-with-logits against the row of :func:`global_stage_targets`. The loss is one mean over all
    ``M_total x L`` entries of the batch. If nothing is masked in the whole batch the loss is a zero that
    stays connected to ``label_embeddings``.
    """
    layout = global_stage_layout(label_parents, self_attention, segment_id)
    num_labels = len(label_parents)
    word = params.word_embeddings
    all_logits: list[Tensor] = []
    all_targets: list[Tensor] = []
    for b in range(masked.shape[0]):
        masked_b = [bool(x) for x in masked[b].tolist()]
        rows = [word[params.cls_id]]
        for i in range(num_labels):
            rows.append(word[params.mask_id] if masked_b[i] else label_embeddings[i])
        rows.append(word[params.sep_id])
        embeds = torch.stack(rows).to(word.dtype)
        hidden = _run_bert(params, embeds, layout["position_ids"], layout["token_type_ids"], layout["may_attend"])
        targets = global_stage_targets(label_names, label_parents, masked_b, mode)
        masked_ids = [i for i in range(num_labels) if masked_b[i]]
        for row_index, i in enumerate(masked_ids):
            transformed = params.transform(hidden[i + 1].unsqueeze(0))[0]
            all_logits.append(transformed @ label_embeddings.T)
            all_targets.append(targets[row_index].to(device=word.device, dtype=transformed.dtype))
    if not all_logits:
        return label_embeddings.sum() * 0.0
    logits = torch.stack(all_logits)
    targets_t = torch.stack(all_targets)
    return F.binary_cross_entropy_with_logits(logits, targets_t, reduction="mean")


# ---------------------------------------------------------------------------------------------------------------------
# 4. Local stage (Eq. 5-9, reference-notes 1.5, H8, H9, H11, H12)
# ---------------------------------------------------------------------------------------------------------------------


def _gold_levels(labels_b: list[float], levels: list[int], depth: int) -> list[list[int]]:
    """Gold labels of one example grouped by level: entry h-1 holds the gold labels of level h (y_h in Eq. 5).

    Returns only the levels 1..k that carry gold labels; raises if they are not a prefix (the labels
    must be ancestor-closed, reference-notes 1.5 "d = number of non-empty levels").
    """
    per_level: list[list[int]] = [[] for _ in range(depth)]
    for label, value in enumerate(labels_b):
        if value > 0.5:
            per_level[levels[label] - 1].append(label)
    k = 0
    while k < depth and per_level[k]:
        k += 1
    if any(per_level[h] for h in range(k, depth)):
        raise ValueError("gold levels are not a prefix 1..k (labels must be ancestor-closed)")
    return per_level[:k]


def _local_stage_hidden(
    params: HBGLParams,
    label_parents: list[list[int]],
    input_ids_b: Tensor,
    attention_mask_b: Tensor,
    labels_b: Tensor,
    replaced_b: Tensor,
    detach_gold_inputs: bool = False,
) -> tuple[Tensor, int, int]:
    """Hidden states of one training sequence ``[text S | gold slots T | pseudo slots T]`` (Eq. 5, 7, H11, H12, 1.5).

    T = D + 1 slots (one per level plus a stop slot, H11). Returns ``(hidden [S + 2T, H], k, n_src)``
    where k = number of gold levels.

    * Text embeddings: ``W[input_ids]``; positions 0..S-1; token type 0.
    * Gold slot j < k: sum of the rows of level j+1's gold labels (u_{j+1} of Eq. 5); gold slot k: W[sep]
      (stop); slots > k: W[mask] as a filler (never attended). If ``replaced_b[j]``, gold slot j is W[mask]
      (s2s-ft target masking, H12). With ``detach_gold_inputs`` the gold-slot rows are taken from
      ``W.detach()`` (authors' code, 1.5 [QUIRK] / section 6); values are identical either way, only the
      gradient differs. Default: not detached (Eq. 8 optimises Y-hat on both sides).
    * Pseudo slots: W[mask]. Gold slot j and pseudo slot j both get position ``n_src + j``; all slots get
      token type 1.
    * may_attend (UniLM pseudo-mask, 1.5): text query -> real text keys only (padding never is a key);
      gold slot j -> real text + gold slots 0..j; pseudo slot j -> real text + gold slots 0..j-1 + itself;
      slots j > k are never keys; padding and unused slot query rows attend the real text only.
    """
    word = params.word_embeddings
    levels = label_levels(label_parents)
    depth = max(levels) if levels else 0
    num_slots = depth + 1
    seq_len = input_ids_b.shape[0]
    real = [bool(x) for x in attention_mask_b.tolist()]
    n_src = sum(1 for x in real if x)
    gold = _gold_levels([float(x) for x in labels_b.tolist()], levels, depth)
    k = len(gold)
    replaced = [bool(x) for x in replaced_b.tolist()]

    gold_source = word.detach() if detach_gold_inputs else word
    gold_rows: list[Tensor] = []
    for j in range(num_slots):
        if j <= k and replaced[j]:
            gold_rows.append(gold_source[params.mask_id])
        elif j < k:
            row = torch.zeros_like(word[0])
            for label in gold[j]:
                row = row + gold_source[params.label_offset + label]
            gold_rows.append(row)
        elif j == k:
            gold_rows.append(gold_source[params.sep_id])
        else:
            gold_rows.append(word[params.mask_id])  # unused filler, never a key
    pseudo_rows = [word[params.mask_id] for _ in range(num_slots)]
    text_rows = [word[int(t)] for t in input_ids_b.tolist()]
    embeds = torch.stack(text_rows + gold_rows + pseudo_rows).to(word.dtype)

    n = seq_len + 2 * num_slots
    gold_start = seq_len
    pseudo_start = seq_len + num_slots
    position_ids = torch.zeros(n, dtype=torch.long)
    token_type_ids = torch.zeros(n, dtype=torch.long)
    for t in range(seq_len):
        position_ids[t] = t
    for j in range(num_slots):
        position_ids[gold_start + j] = n_src + j
        position_ids[pseudo_start + j] = n_src + j
        token_type_ids[gold_start + j] = 1
        token_type_ids[pseudo_start + j] = 1

    may = torch.zeros(n, n, dtype=torch.bool)
    for q in range(n):
        for t in range(seq_len):
            may[q, t] = real[t]  # every row sees the real text (text, padding, slots)
    for j in range(k + 1):
        for i in range(j + 1):
            may[gold_start + j, gold_start + i] = True  # gold slot j -> gold 0..j
        for i in range(j):
            may[pseudo_start + j, gold_start + i] = True  # pseudo slot j -> gold 0..j-1
        may[pseudo_start + j, pseudo_start + j] = True  # ... and itself
    hidden = _run_bert(params, embeds, position_ids, token_type_ids, may)
    return hidden, k, n_src


def local_stage_loss(
    params: HBGLParams,
    label_parents: list[list[int]],
    input_ids: Tensor,
    attention_mask: Tensor,
    labels: Tensor,
    replaced: Tensor,
    loss_columns: str,
    reduction: str,
    *,
    detach_gold_inputs: bool = False,
) -> tuple[Tensor, Tensor]:
    """Teacher-forced level-wise BCE loss of the local stage (Eq. 7, 8, 9, H8, H9, H11, reference-notes 1.5).

    Per example (sequence of :func:`_local_stage_hidden`) and for every used pseudo slot j = 0..k:
    ``s = transform(h_j) @ W[cols]^T + bias[cols]`` with ``cols = [sep] + label rows``.

    * ``loss_columns == "level"`` (Eq. 8): scored labels = those of level j+1 (slot j = D: [SEP] only).
    * ``loss_columns == "all"`` (authors' code, H8): scored labels = every label. Only the scored
      columns widen; slot inputs and targets stay per level.
    * Targets: slot j < k: gold labels of level j+1 -> 1, [SEP] 0, all else 0; slot k: [SEP] 1, labels 0.
    * ``reduction == "example"``: mean over the example's scored entries, then mean over examples;
      ``"batch"``: sum over all scored entries of the batch / their count.

    ``detach_gold_inputs`` (keyword-only, default False): see :func:`_local_stage_hidden`.

    Returns ``(loss, logits [B, L])`` where ``logits[b, l]`` is label l's score (bias included) at pseudo
    slot level(l) - 1, for every label, including slots beyond k (those slots attend the real text only).
    """
    if loss_columns not in ("level", "all"):
        raise ValueError(f"unknown loss_columns {loss_columns!r}")
    if reduction not in ("example", "batch"):
        raise ValueError(f"unknown reduction {reduction!r}")
    levels = label_levels(label_parents)
    depth = max(levels) if levels else 0
    num_labels = len(label_parents)
    num_slots = depth + 1
    seq_len = input_ids.shape[1]
    pseudo_start = seq_len + num_slots
    label_vocab = [params.label_offset + label for label in range(num_labels)]

    per_example_losses: list[Tensor] = []
    all_entries: list[Tensor] = []
    logits_rows: list[Tensor] = []
    for b in range(input_ids.shape[0]):
        hidden, k, _ = _local_stage_hidden(
            params, label_parents, input_ids[b], attention_mask[b], labels[b], replaced[b], detach_gold_inputs
        )
        gold = [float(x) > 0.5 for x in labels[b].tolist()]

        # logits for every label at its own level's pseudo slot
        slot_label_scores = [_head_scores(params, hidden[pseudo_start + j], label_vocab) for j in range(num_slots)]
        logits_rows.append(torch.stack([slot_label_scores[levels[label] - 1][label] for label in range(num_labels)]))

        entries: list[Tensor] = []
        for j in range(k + 1):
            if loss_columns == "level":
                scored_labels = [label for label in range(num_labels) if levels[label] == j + 1]
            else:
                scored_labels = list(range(num_labels))
            cols = [params.sep_id] + [params.label_offset + label for label in scored_labels]
            scores = _head_scores(params, hidden[pseudo_start + j], cols)
            target = [1.0 if j == k else 0.0]
            for label in scored_labels:
                target.append(1.0 if (j < k and levels[label] == j + 1 and gold[label]) else 0.0)
            target_t = torch.tensor(target, dtype=scores.dtype, device=scores.device)
            entries.append(F.binary_cross_entropy_with_logits(scores, target_t, reduction="none"))
        example_entries = torch.cat(entries)
        per_example_losses.append(example_entries.mean())
        all_entries.append(example_entries)

    if reduction == "example":
        loss = torch.stack(per_example_losses).mean()
    else:
        loss = torch.cat(all_entries).mean()
    return loss, torch.stack(logits_rows)


# ---------------------------------------------------------------------------------------------------------------------
# 5. Decoding (Eq. 10-12, H10, reference-notes 1.6)
# ---------------------------------------------------------------------------------------------------------------------


def _decode_hidden(params: HBGLParams, input_ids_b: Tensor, attention_mask_b: Tensor, fed: list[Tensor]) -> Tensor:
    """Hidden state of the [MASK] slot for one decoding step, uncached (Eq. 10, H13 without caching).

    Sequence = ``[text S | fed slots u_1..u_m | one [MASK] slot]`` with m = ``len(fed)``. Positions: text
    0..S-1, fed slot j -> n_src + j, mask slot -> n_src + m; token type 1 for slots. may_attend: text (and
    padding) rows -> real text; fed slot j -> real text + fed slots 0..j; mask slot -> real text + all fed
    slots + itself (the sub-matrix A^p_h of the training pseudo-mask).
    """
    word = params.word_embeddings
    seq_len = input_ids_b.shape[0]
    real = [bool(x) for x in attention_mask_b.tolist()]
    n_src = sum(1 for x in real if x)
    m = len(fed)
    rows = [word[int(t)] for t in input_ids_b.tolist()] + list(fed) + [word[params.mask_id]]
    embeds = torch.stack(rows).to(word.dtype)
    n = seq_len + m + 1
    position_ids = torch.zeros(n, dtype=torch.long)
    token_type_ids = torch.zeros(n, dtype=torch.long)
    for t in range(seq_len):
        position_ids[t] = t
    for j in range(m + 1):
        position_ids[seq_len + j] = n_src + j
        token_type_ids[seq_len + j] = 1
    may = torch.zeros(n, n, dtype=torch.bool)
    for q in range(n):
        for t in range(seq_len):
            may[q, t] = real[t]
    for j in range(m):
        for i in range(j + 1):
            may[seq_len + j, seq_len + i] = True
    for i in range(m + 1):
        may[seq_len + m, seq_len + i] = True
    hidden = _run_bert(params, embeds, position_ids, token_type_ids, may)
    return hidden[seq_len + m]


def _fire_cutoff(threshold: float) -> float:
    """Logit cut-off equivalent to ``sigmoid(score) > threshold`` (Eq. 11 indicator with 0.5 -> logit 0)."""
    if threshold <= 0.0:
        return -math.inf
    if threshold >= 1.0:
        return math.inf
    return math.log(threshold / (1.0 - threshold))


def decode(
    params: HBGLParams,
    label_parents: list[list[int]],
    input_ids: Tensor,
    attention_mask: Tensor,
    rule: str,
    empty_level_input: str,
    loss_columns: str,
    threshold: float = 0.5,
) -> list[dict]:
    """Level-by-level greedy decoding, uncached (Eq. 10, 11, 12, H10, H13, reference-notes 1.6).

    Returns one dict per example: ``"selected"`` (set of label ids) and ``"scores"`` (step -> logits).
    A label fires when ``sigmoid(score) > threshold``, implemented as ``score > log(t / (1 - t))``
    (so 0.5 means logit > 0 exactly). Each step builds the sequence of :func:`_decode_hidden`.

    * ``rule == "paper"`` (Eq. 10-12): steps h = 1..D (``scores`` keys are these 1-based levels; values are
      the logits of ALL L labels, labels only, no [SEP], bias included, index = label id). Candidates are
      the labels of level h (``loss_columns == "level"``) or every label (``"all"``). fired = candidates
      that fire; selected gets the fired labels whose level is h (Eq. 12). u_h (Eq. 11) = sum of the rows
      of ALL fired candidates (off-level ones included in "all" mode); if none fired, u_h = W[sep]
      (``empty_level_input == "sep"``, Eq. 11) or the zero vector (``"zero"``, H10). Decoding always runs
      through level D.
    * ``rule == "stop_at_empty"``: as "paper", but when the fired candidate set of a step is empty (the
      same condition that triggers the empty-level input), that step's scores are kept and decoding of
      the example stops: no later level is scored or selected.
    * ``rule == "authors"`` (1.6 decoding loop): steps k = 0..D (``scores`` keys 0-based; values are logits
      of ``[SEP] + all labels``, [SEP] at index 0, label l at index l + 1, bias included). fired = those
      that fire. If [SEP] fired: stop, and this step's labels are NOT added. Otherwise selected gets every
      fired label (any level) and u_k = sum of the fired label rows, or the ``empty_level_input`` vector
      if nothing fired. The authors' post-processing bugs (the last id dropped when [SEP] never fires;
      an empty prediction turned into {label 0}) are deliberately NOT reproduced.
    """
    if rule not in ("paper", "stop_at_empty", "authors"):
        raise ValueError(f"unknown rule {rule!r}")
    if empty_level_input not in ("sep", "zero"):
        raise ValueError(f"unknown empty_level_input {empty_level_input!r}")
    if loss_columns not in ("level", "all"):
        raise ValueError(f"unknown loss_columns {loss_columns!r}")
    levels = label_levels(label_parents)
    depth = max(levels) if levels else 0
    num_labels = len(label_parents)
    cutoff = _fire_cutoff(threshold)
    word = params.word_embeddings
    label_vocab = [params.label_offset + label for label in range(num_labels)]

    def empty_vector() -> Tensor:
        return word[params.sep_id] if empty_level_input == "sep" else torch.zeros_like(word[0])

    results: list[dict] = []
    with torch.no_grad():
        for b in range(input_ids.shape[0]):
            selected: set[int] = set()
            scores_by_step: dict[int, Tensor] = {}
            fed: list[Tensor] = []
            if rule in ("paper", "stop_at_empty"):
                for h in range(1, depth + 1):
                    hidden = _decode_hidden(params, input_ids[b], attention_mask[b], fed)
                    scores = _head_scores(params, hidden, label_vocab)
                    scores_by_step[h] = scores
                    if loss_columns == "level":
                        candidates = [label for label in range(num_labels) if levels[label] == h]
                    else:
                        candidates = list(range(num_labels))
                    fired = [label for label in candidates if float(scores[label]) > cutoff]
                    for label in fired:
                        if levels[label] == h:
                            selected.add(label)
                    if not fired:
                        if rule == "stop_at_empty":
                            break
                        fed.append(empty_vector())
                    else:
                        u = torch.zeros_like(word[0])
                        for label in fired:
                            u = u + _label_row(params, label)
                        fed.append(u)
            else:
                for k in range(depth + 1):
                    hidden = _decode_hidden(params, input_ids[b], attention_mask[b], fed)
                    scores = _head_scores(params, hidden, [params.sep_id, *label_vocab])
                    scores_by_step[k] = scores
                    if float(scores[0]) > cutoff:
                        break
                    fired = [label for label in range(num_labels) if float(scores[label + 1]) > cutoff]
                    selected.update(fired)
                    if not fired:
                        fed.append(empty_vector())
                    else:
                        u = torch.zeros_like(word[0])
                        for label in fired:
                            u = u + _label_row(params, label)
                        fed.append(u)
            results.append({"selected": selected, "scores": scores_by_step})
    return results
