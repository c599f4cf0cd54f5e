"""Global hierarchy-aware label embeddings (HBGL paper §4.1, Alg. 1, Eq. 1-4).

Input: ``[CLS] e(label_0) ... e(label_{L-1}) [SEP]`` with position id = the label's level ([CLS] 0,
[SEP] depth + 1) and segment ``cpt_segment_id``, under the label-graph mask (Eq. 2). Each label slot is
replaced by ``[MASK]`` with probability r, growing linearly from ``cpt_mask_ratio_min`` to
``cpt_mask_ratio_max`` over the stage. A masked slot is scored against every label with the model's
head transform and the label rows (tied, no bias: the authors' scoring, reference H4); the loss is BCE
where a masked leaf's targets are itself and the other masked leaves under the same parent (Eq. 3-4).

Only the label rows learn: the encoder's parameters are frozen (``requires_grad=False``) so backward
computes no weight gradients for them, only the activations' path back to the label inputs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

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


class LabelGraphPretrainer(nn.Module):
    """Trains a copy of the label rows of an HBGL model with the encoder frozen.

    ``forward(progress, mask_seed)`` takes ``[B]`` floats in [0, 1] (the stage's progress, which sets the masking
    ratio) and ``[B]`` integer seeds of each sequence's label mask (:func:`stage_rows`), and returns
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
        self.register_buffer("graph_mask", label_graph_mask(config.label_parents, config.cpt_self_attention),
                             persistent=False)
        levels = model.label_levels
        positions = torch.cat([levels.new_zeros(1), levels, levels.new_full((1,), model.depth + 1)])
        self.register_buffer("positions", positions, persistent=False)
        names = [config.id2label[i] for i in range(config.num_labels)]
        keys = sibling_group_keys(config.label_parents, config.cpt_target_mode, names)
        self.register_buffer("shared_targets", shared_target_matrix(keys), persistent=False)

    def mask_ratio(self, progress: torch.Tensor) -> torch.Tensor:
        """``[B]`` progress (clamped to [0, 1]) -> masking ratio, linear from ``cpt_mask_ratio_min`` to ``_max``."""
        c = self.model.config
        return c.cpt_mask_ratio_min + (c.cpt_mask_ratio_max - c.cpt_mask_ratio_min) * progress.clamp(0, 1)

    def draw_masks(self, progress: torch.Tensor, mask_seed: torch.Tensor) -> torch.Tensor:
        """``[B]`` progress and seeds -> ``[B, L]`` bool: each label slot masked with probability r (Alg. 1 line 8),
        at least one per sequence. Drawn on the CPU from each row's own generator (device-independent)."""
        num_labels = self.model.config.num_labels
        rows = []
        for ratio, seed in zip(self.mask_ratio(progress.float().cpu()).tolist(), mask_seed.tolist(), strict=True):
            generator = torch.Generator().manual_seed(int(seed))
            masked = torch.rand(num_labels, generator=generator) < ratio
            if not masked.any():
                masked[torch.randint(num_labels, (1,), generator=generator)] = True
            rows.append(masked)
        return torch.stack(rows).to(self.label_embeddings.device)

    def forward(self, progress: torch.Tensor | None = None, mask_seed: torch.Tensor | None = None,
                masked: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Masked label prediction (Eq. 3-4) on ``B`` copies of the label graph: masks drawn from ``progress`` and
        ``mask_seed`` (``[B]`` each), or given as ``masked`` ``[B, L]`` bool."""
        model, config = self.model, self.model.config
        if masked is None:
            if progress is None or mask_seed is None:
                raise ValueError("LabelGraphPretrainer needs progress and mask_seed, or explicit masks")
            masked = self.draw_masks(progress, mask_seed)
        b, num_labels = masked.shape
        device = self.label_embeddings.device
        masked = masked.to(device)
        cls_row, sep_row, mask_row = model._word_rows([config.cls_token_id, config.sep_token_id, config.mask_token_id])
        labels_in = torch.where(masked[..., None], mask_row, self.label_embeddings[None])
        embeds = torch.cat([cls_row.expand(b, 1, -1), labels_in, sep_row.expand(b, 1, -1)], dim=1)
        types = torch.full((b, num_labels + 2), config.cpt_segment_id, dtype=torch.long, device=device)
        types[:, 0] = types[:, -1] = 0
        hidden = model._encode(embeds, self.positions.expand(b, -1), types,
                               self.graph_mask.expand(b, -1, -1))[:, 1:-1]  # [B, L, H]
        if not masked.any():  # nothing to predict (explicit masks only): a zero loss that still backpropagates
            return {"loss": self.label_embeddings.sum() * 0}
        scores = model.cls.transform(hidden[masked]) @ self.label_embeddings.T  # [M, L]
        targets = masked_label_targets(masked, self.shared_targets)[masked].to(scores.dtype)
        return {"loss": F.binary_cross_entropy_with_logits(scores, targets)}

    @torch.no_grad()
    def commit(self) -> None:
        """Copy the trained rows into the model and unfreeze it."""
        weight = self.model.get_input_embeddings().weight
        weight[self.model.label_columns] = self.label_embeddings.to(weight.dtype)
        for p in self.model.parameters():
            p.requires_grad_(True)
