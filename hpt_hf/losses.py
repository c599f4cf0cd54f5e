"""Zero-bounded multi-label cross-entropy (ZMLCE, HPT Eq. 9-10)."""

from __future__ import annotations

import torch


def zmlce(scores: torch.Tensor, targets: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """ZMLCE summed over label groups, averaged over the batch.

    Per example and group ``g``: ``log(1 + sum_{neg in g} e^{s}) + log(1 + sum_{pos in g} e^{-s})``: the
    threshold 0 sits between every positive and every negative score (Eq. 9); a group without gold labels
    still pushes its scores below 0.

    Args:
        scores: ``[B, L]`` label scores.
        targets: ``[B, L]`` 0/1.
        groups: ``[G, L]`` bool, the labels of each group: one row per depth for the paper's per-layer loss
            (Eq. 10), a single all-true row for the authors' one-ZMLCE-per-example code.
    Returns: scalar loss.
    """
    positive = targets.bool()[:, None, :] & groups[None]  # [B, G, L]
    negative = ~targets.bool()[:, None, :] & groups[None]
    s = scores[:, None, :]
    zero = torch.zeros(*positive.shape[:2], 1, dtype=scores.dtype, device=scores.device)
    neg_term = torch.logsumexp(torch.cat([zero, s.masked_fill(~negative, float("-inf"))], -1), -1)
    pos_term = torch.logsumexp(torch.cat([zero, (-s).masked_fill(~positive, float("-inf"))], -1), -1)
    return (neg_term + pos_term).sum(-1).mean()
