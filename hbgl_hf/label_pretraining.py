"""Global hierarchy-aware label embeddings (HBGL paper §4.1, Alg. 1, Eq. 1-4).

Input: ``[CLS] e(label_0) ... e(label_{L-1}) [SEP]`` with position id = the label's level ([CLS] 0,
[SEP] depth + 1) and segment ``cpt_segment_id``, under the label-graph mask (Eq. 2). Each label slot is
replaced by ``[MASK]`` with probability r, growing linearly from ``cpt_mask_ratio_min`` to
``cpt_mask_ratio_max`` over the stage. A masked slot is scored against every label with the model's
head transform and the label rows (tied, no bias: the authors' scoring, reference H4); the loss is BCE
where a masked leaf's targets are itself and the other masked leaves under the same parent (Eq. 3-4).

Only the label rows learn: the encoder's parameters are frozen (``requires_grad=False``) so backward
computes no weight gradients for them, only the activations' path back to the label inputs.

Scale (beyond the paper): attention runs on the label graph's edge list (``cpt_attention="edges"``, default;
:mod:`.graph_attention`), ``O(L)`` instead of a dense ``[L + 2, L + 2]`` mask, and each layer only for the positions
the masked slots' last states depend on (the same states; the layers below the top two need nearly all of them, so
this saves about a sixth of the work at the masking ratios of Alg. 1); the targets come from one group id
per label instead of an ``[L, L]`` matrix. A taxonomy of more than ``cpt_max_labels`` labels no longer fits one
sequence: each sequence then holds a sampled ancestor-closed sub-graph of at most ``cpt_max_labels`` labels
(:func:`sample_label_subset`), attends along the sub-graph's edges and scores its masked slots against the
sequence's own labels. When the taxonomy fits, the sequence is the whole graph and the computation is Alg. 1's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .encoder_backbone import with_label_type
from .graph_attention import encode_wanted_positions
from .hierarchy_index import parent_links
from .masks import label_graph_mask


def sibling_group_keys(label_parents: Sequence[Sequence[int]], mode: str = "intended",
                       label_names: Sequence[str] | None = None) -> list[object]:
    """Per label, the key that groups masked leaves into shared targets (``None``: own target only).

    ``"intended"`` (Eq. 4): a leaf's key is its parent set, non-leaves get ``None``.
    ``"hbgl_shifted"``: the authors' off-by-one lookup (reference §1.4 [BUG]), in *their* label order, the
    Python-sorted ``label_names`` whatever the ids: the label of sorted rank ``r`` is tested and grouped by the
    label of rank ``r - 1`` (its leafness and parents); rank 0 counts as a non-leaf.
    """
    has_child = [False] * len(label_parents)
    for parents in label_parents:
        for p in parents:
            has_child[p] = True

    def key(i: int) -> object:
        return None if has_child[i] else tuple(sorted(label_parents[i]))

    if mode == "intended":
        return [key(i) for i in range(len(label_parents))]
    if mode == "hbgl_shifted":
        if label_names is None or len(label_names) != len(label_parents):
            raise ValueError("cpt_target_mode='hbgl_shifted' needs every label's name (the authors' order)")
        order = sorted(range(len(label_parents)), key=lambda i: label_names[i])
        keys: list[object] = [None] * len(label_parents)
        for rank in range(1, len(order)):
            keys[order[rank]] = key(order[rank - 1])
        return keys
    raise ValueError(f"cpt_target_mode must be 'intended' or 'hbgl_shifted', got {mode!r}")


def shared_target_matrix(group_keys: Sequence[object]) -> torch.Tensor:
    """``[L, L]`` bool: ``S[i, j]`` when ``j`` is a target of a masked ``i`` if ``j`` is masked too: ``j = i``
    or both share a non-``None`` group key (Eq. 4)."""
    codes: dict[object, int] = {}
    group = torch.tensor([-1 if k is None else codes.setdefault(k, len(codes)) for k in group_keys])
    same = (group[:, None] == group[None, :]) & (group[:, None] >= 0)
    return same | torch.eye(len(group_keys), dtype=torch.bool)


def target_group_ids(group_keys: Sequence[object]) -> torch.Tensor:
    """``[L]`` long: one id per distinct non-``None`` group key, ``-1`` for ``None`` (own target only): the
    ``O(L)`` form of :func:`shared_target_matrix` (``S[i, j] = i == j or g[i] == g[j] >= 0``)."""
    codes: dict[object, int] = {}
    return torch.tensor([-1 if k is None else codes.setdefault(k, len(codes)) for k in group_keys], dtype=torch.long)


def masked_label_targets(masked: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
    """``[B, L]`` bool of masked slots and the ``[L, L]`` :func:`shared_target_matrix` -> ``[B, L, L]``
    targets: row ``i`` (a masked label) holds ``i`` and the masked labels sharing its group."""
    return shared[None] & masked[:, None, :] & masked[:, :, None]


def stage_rows(num_steps: int, batch_size: int, seed: int) -> dict[str, list]:
    """The stage's "dataset": ``num_steps * batch_size`` rows served in order, each with its step's progress
    (Alg. 1 line 15: the masking ratio grows with the step) and its own masking seed, so that every sequence
    (and, under DDP, every rank's share of a step, which takes other rows) draws other label masks, reproducibly
    from ``seed``. ``batch_size`` is the global batch of one step (per-device batch x processes)."""
    total = num_steps * batch_size
    # torch's CPU generator keeps 32 bits of a seed: hash (seed, row) into 32 bits rather than add them up
    mask_seeds = [int.from_bytes(hashlib.blake2b(f"{seed}:{i}".encode(), digest_size=4).digest(), "little")
                  for i in range(total)]
    return {"progress": [i // batch_size / num_steps for i in range(total)], "mask_seed": mask_seeds}


def sample_label_subset(generator: torch.Generator, max_labels: int, parents: Sequence[Sequence[int]],
                        children: Sequence[Sequence[int]], ancestors: Sequence[Sequence[int]]) -> list[int]:
    """A random ancestor-closed set of at most ``max_labels`` label ids, sorted (level-major, as the whole graph):
    labels are taken in a random order, each with its siblings and children (a neighbourhood in which masked
    sibling leaves share targets, Eq. 4), every one with all of its ancestors so that no label loses its path to the
    root; a label whose closure does not fit any more is skipped."""
    chosen: set[int] = set()
    misses = 0  # seeds in a row that added nothing: the budget is (nearly) full, stop rather than scan all L
    for seed in torch.randperm(len(parents), generator=generator).tolist():
        if len(chosen) >= max_labels or misses >= 64:
            break
        size = len(chosen)
        family = [seed, *(c for p in parents[seed] for c in children[p]), *children[seed]]
        for label in family:
            if label in chosen:
                continue
            closure = {label, *ancestors[label]} - chosen
            if len(chosen) + len(closure) <= max_labels:
                chosen |= closure
        misses = 0 if len(chosen) > size else misses + 1
    return sorted(chosen)


def sequence_edges(slots: torch.Tensor, links: torch.Tensor, self_attention: bool) -> torch.Tensor:
    """``[B, n]`` label id per slot (``-1``: padding) and the ``[2, P]`` :func:`parent_links` -> ``[2, E]``
    ``(receiver, sender)`` indices, sorted by receiver, into the ``B * (n + 2)`` flattened positions of
    ``[CLS] slots [SEP]`` rows:
    the label graph of each row's labels (Eq. 2: parent-child links both ways, a top-level label and [CLS]; self
    loops when ``self_attention``); [SEP] and padding slots see only themselves and nobody sees them."""
    b, n = slots.shape
    width, device = n + 2, slots.device
    num_labels = int(links[0].max()) + 1 if links.numel() else 0
    position = torch.full((b, num_labels + 1), -1, dtype=torch.long, device=device)  # column L: the root
    position[:, num_labels] = 0
    rows, columns = (slots >= 0).nonzero(as_tuple=True)
    position[rows, slots[rows, columns]] = columns + 1
    parent = torch.where(links[1] >= 0, links[1], num_labels)
    child_pos, parent_pos = position[:, links[0]], position[:, parent]  # [B, P]
    row, link = ((child_pos >= 0) & (parent_pos >= 0)).nonzero(as_tuple=True)
    child_pos, parent_pos = child_pos[row, link] + row * width, parent_pos[row, link] + row * width
    own = torch.arange(width, device=device).expand(b, -1)
    if self_attention:
        sees_itself = torch.ones(b, width, dtype=torch.bool, device=device)
    else:  # [SEP] and the padding slots only (their rows would be empty otherwise)
        sees_itself = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=device), slots < 0,
                                 torch.ones(b, 1, dtype=torch.bool, device=device)], dim=1)
    flat_own = (own + torch.arange(b, device=device)[:, None] * width)[sees_itself]
    receivers = torch.cat([child_pos, parent_pos, flat_own])
    senders = torch.cat([parent_pos, child_pos, flat_own])
    order = torch.argsort(receivers, stable=True)  # receiver order: a deterministic layout, the sums read it in order
    return torch.stack([receivers[order], senders[order]])


class LabelGraphPretrainer(nn.Module):
    """Trains a copy of the label rows of an HBGL model with the encoder frozen.

    ``forward(progress, mask_seed)`` takes ``[B]`` floats in [0, 1] (the stage's progress, which sets the masking
    ratio) and ``[B]`` integer seeds of each sequence's labels and label mask (:func:`stage_rows`), and returns
    ``{"loss": ...}``, so it runs under the Trainer (a dataset of those rows) and DDP: the freeze happens here,
    before any wrapping, and the only trainable parameter takes part in every step. :meth:`commit` writes the
    rows back into the model's embedding table.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        for p in model.parameters():
            p.requires_grad_(False)
        config = model.config
        rows = model.get_input_embeddings().weight[model.label_columns]
        self.label_embeddings = nn.Parameter(rows.detach().clone())
        levels = model.label_levels
        self.register_buffer("levels", torch.cat([levels, levels.new_zeros(1)]), persistent=False)  # [-1]: pad
        self.register_buffer("links", parent_links(config.label_parents).to(levels.device), persistent=False)
        names = [config.id2label[i] for i in range(config.num_labels)]
        keys = sibling_group_keys(config.label_parents, config.cpt_target_mode, names)
        self.register_buffer("target_groups", target_group_ids(keys).to(levels.device), persistent=False)
        limit = getattr(config, "cpt_max_labels", None)
        self.sequence_labels = config.num_labels if not limit else min(limit, config.num_labels)
        self._family: tuple[list, list, list] | None = None  # parents, children, ancestors: built when sampling

    # ------------------------------------------------------------ dense forms, for inspection and tests
    @property
    def graph_mask(self) -> torch.Tensor:
        """``[L + 2, L + 2]`` bool: the whole graph's mask (Eq. 2), what ``cpt_attention="dense"`` feeds BERT."""
        return label_graph_mask(self.model.config.label_parents, self.model.config.cpt_self_attention)

    @property
    def positions(self) -> torch.Tensor:
        """``[L + 2]``: the whole-graph sequence's position ids ([CLS] 0, a label its level, [SEP] depth + 1)."""
        levels = self.levels[:-1]
        return torch.cat([levels.new_zeros(1), levels, levels.new_full((1,), self.model.depth + 1)])

    @property
    def shared_targets(self) -> torch.Tensor:
        """``[L, L]`` bool :func:`shared_target_matrix` of the stage's target groups."""
        g = self.target_groups
        return ((g[:, None] == g[None, :]) & (g[:, None] >= 0)) | torch.eye(len(g), dtype=torch.bool, device=g.device)

    def mask_ratio(self, progress: torch.Tensor) -> torch.Tensor:
        """``[B]`` progress (clamped to [0, 1]) -> masking ratio, linear from ``cpt_mask_ratio_min`` to ``_max``."""
        c = self.model.config
        return c.cpt_mask_ratio_min + (c.cpt_mask_ratio_max - c.cpt_mask_ratio_min) * progress.clamp(0, 1)

    def _hierarchy_lists(self) -> tuple[list, list, list]:
        if self._family is None:
            parents = [list(p) for p in self.model.config.label_parents]
            children: list[list[int]] = [[] for _ in parents]
            ancestors: list[list[int]] = []
            for i, ps in enumerate(parents):
                for p in ps:
                    children[p].append(i)
                ancestors.append(sorted({a for p in ps for a in (p, *ancestors[p])}))
            self._family = parents, children, ancestors
        return self._family

    def draw_sequences(self, progress: torch.Tensor, mask_seed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B]`` progress and seeds -> ``slots`` ``[B, n]`` long (the label of each slot, ``-1`` padding) and
        ``masked`` ``[B, n]`` bool: each label slot masked with probability r (Alg. 1 line 8), at least one per
        sequence. With every label in one sequence (``n = L``) the slots are ``0 .. L-1``; otherwise a
        :func:`sample_label_subset` per sequence. Drawn on the CPU from each row's own generator."""
        num_labels, n = self.model.config.num_labels, self.sequence_labels
        slot_rows, mask_rows = [], []
        for ratio, seed in zip(self.mask_ratio(progress.float().cpu()).tolist(), mask_seed.tolist(), strict=True):
            generator = torch.Generator().manual_seed(int(seed))
            if n == num_labels:
                slots = torch.arange(num_labels)
            else:
                subset = torch.tensor(sample_label_subset(generator, n, *self._hierarchy_lists()), dtype=torch.long)
                slots = torch.cat([subset, subset.new_full((n - len(subset),), -1)])
            size = int((slots >= 0).sum())
            masked = torch.zeros(n, dtype=torch.bool)
            masked[:size] = torch.rand(size, generator=generator) < ratio
            if not masked.any():
                masked[torch.randint(size, (1,), generator=generator)] = True
            slot_rows.append(slots)
            mask_rows.append(masked)
        device = self.label_embeddings.device
        return torch.stack(slot_rows).to(device), torch.stack(mask_rows).to(device)

    def draw_masks(self, progress: torch.Tensor, mask_seed: torch.Tensor) -> torch.Tensor:
        """The ``[B, n]`` ``masked`` half of :meth:`draw_sequences`."""
        return self.draw_sequences(progress, mask_seed)[1]

    def forward(self, progress: torch.Tensor | None = None, mask_seed: torch.Tensor | None = None,
                masked: torch.Tensor | None = None, slots: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Masked label prediction (Eq. 3-4) on ``B`` label-graph sequences: drawn from ``progress`` and
        ``mask_seed`` (``[B]`` each), or given as ``masked`` ``[B, n]`` bool (with ``slots`` ``[B, n]``, the label
        ids, ``-1`` padding; default: the whole graph ``0 .. L-1``)."""
        model, config = self.model, self.model.config
        if masked is None:
            if progress is None or mask_seed is None:
                raise ValueError("LabelGraphPretrainer needs progress and mask_seed, or explicit masks")
            slots, masked = self.draw_sequences(progress, mask_seed)
        device = self.label_embeddings.device
        masked = masked.to(device)
        b, n = masked.shape
        if slots is None:
            if n != config.num_labels:
                raise ValueError(f"masks over {n} slots need their slots' label ids (the model has "
                                 f"{config.num_labels} labels)")
            slots = torch.arange(n, device=device).expand(b, -1)
        slots = slots.to(device)
        valid = slots >= 0
        if (masked & ~valid).any():
            raise ValueError("a padding slot (label id -1) cannot be masked")
        if not masked.any():  # nothing to predict (explicit masks only): a zero loss that still backpropagates
            return {"loss": self.label_embeddings.sum() * 0}
        cls_row, sep_row, mask_row = model._word_rows([config.cls_token_id, config.sep_token_id, config.mask_token_id])
        slot_rows = self.label_embeddings[slots.clamp(min=0)]  # [B, n, H]
        labels_in = torch.where((masked | ~valid)[..., None], mask_row, slot_rows)
        embeds = torch.cat([cls_row.expand(b, 1, -1), labels_in, sep_row.expand(b, 1, -1)], dim=1)
        levels = self.levels[slots]  # padding (-1) -> position 0
        positions = torch.cat([levels.new_zeros(b, 1), levels, levels.new_full((b, 1), model.depth + 1)], dim=1)
        types = torch.full((b, n + 2), config.cpt_segment_id, dtype=torch.long, device=device)
        types[:, 0] = types[:, -1] = 0
        edges = sequence_edges(slots, self.links, config.cpt_self_attention)
        if getattr(config, "cpt_attention", "edges") == "edges" and model.family == "bert":
            embeds, types = with_label_type(embeds, types, model.label_type_embedding)  # a BERT without segment 1
            states = model.bert.embeddings(inputs_embeds=embeds, position_ids=positions, token_type_ids=types)
            # only the masked slots are scored: the encoder computes what their last states need (about 5/6 of it)
            wanted = F.pad(masked, (1, 1)).reshape(-1)  # [B * (n + 2)]
            masked_hidden = encode_wanted_positions(model.bert.encoder, states.reshape(b * (n + 2), -1), edges[0],
                                                    edges[1], wanted)  # [M, H], row-major as hidden[masked]
        else:  # the dense [B, n + 2, n + 2] mask through the encoder's own attention (every other family: exact,
            # the same result, without the edge-list kernel)
            dense = torch.zeros(b * (n + 2), n + 2, dtype=torch.bool, device=device)
            dense[edges[0], edges[1] % (n + 2)] = True
            masked_hidden = model._encode(embeds, positions, types, dense.view(b, n + 2, n + 2))[:, 1:-1][masked]
        rows = model.cls.transform(masked_hidden)  # [M, E] (bf16 under a bf16 autocast)
        transformed = rows.new_zeros((b, n, rows.shape[-1])).index_put((masked,), rows)
        scores = transformed @ slot_rows.transpose(1, 2)  # [B, n, n]: each slot against the sequence's labels
        groups = torch.where(valid, self.target_groups[slots.clamp(min=0)], -1)
        same = ((groups[:, :, None] == groups[:, None, :]) & (groups[:, :, None] >= 0)) | torch.eye(
            n, dtype=torch.bool, device=device)
        targets = same & masked[:, :, None] & masked[:, None, :]  # Eq. 4 among the sequence's masked labels
        scored = masked[:, :, None] & valid[:, None, :]
        return {"loss": F.binary_cross_entropy_with_logits(scores[scored], targets[scored].to(scores.dtype))}

    @torch.no_grad()
    def commit(self) -> None:
        """Copy the trained rows into the model and unfreeze it."""
        weight = self.model.get_input_embeddings().weight
        weight[self.model.label_columns] = self.label_embeddings.to(weight.dtype)
        for p in self.model.parameters():
            p.requires_grad_(True)
