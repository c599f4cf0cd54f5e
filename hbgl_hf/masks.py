"""Attention masks of HBGL, built as boolean "may attend" matrices (True = attend).

* :func:`label_graph_mask`: the global stage's label-graph mask (paper Eq. 2); :func:`parent_links` and
  :func:`label_graph_edges`: the same graph as an edge list, ``O(L)`` (what the global stage runs on).
* :func:`local_hierarchy_mask`: the local stage's seq2seq mask over ``[text | gold slots | mask slots]``
  (paper §4.2, Fig. 1; UniLM pseudo-masking as in the authors' code).
* :func:`decoding_mask`: the same rule for ``[text | fed slots | one mask slot]`` at inference (Eq. 10).
* :func:`to_backend_mask`: the one place where a boolean mask becomes what the attention backend expects.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .encoder_backbone import to_backend_mask  # noqa: F401  (the one conversion, shared with the encoders)
from .hierarchy_index import parent_links


def label_graph_mask(label_parents: Sequence[Sequence[int]], self_attention: bool = True) -> torch.Tensor:
    """``[L + 2, L + 2]`` mask over ``[CLS] label_0 ... label_{L-1} [SEP]`` (Eq. 2).

    Label ``i`` sits at position ``i + 1``; ``[CLS]`` stands for the root. ``A[i, j]`` is True when ``j`` is
    a parent or a child of ``i`` (both directions, as the authors' code with BCE), or ``i = j`` when
    ``self_attention`` (paper: allowed; code: not). ``[SEP]`` takes no part in the graph: its row sees only
    itself so that no row is empty.
    """
    n = len(label_parents)
    mask = torch.zeros(n + 2, n + 2, dtype=torch.bool)
    for child, parents in enumerate(label_parents):
        for parent in parents or [-1]:  # -1 -> [CLS] (the root) at position 0
            mask[parent + 1, child + 1] = True
            mask[child + 1, parent + 1] = True
    if self_attention:
        mask.fill_diagonal_(True)
    mask[n + 1, n + 1] = True
    return mask


def label_graph_edges(label_parents: Sequence[Sequence[int]], self_attention: bool = True) -> torch.Tensor:
    """``[2, E]`` long ``(receiver, sender)`` positions of the True entries of :func:`label_graph_mask`, in the same
    row-major order (``label_graph_mask(...).nonzero().T``), built in ``O(L)``: each parent link both ways,
    self-loops when ``self_attention``, and [SEP] (position ``L + 1``) to itself."""
    n = len(label_parents)
    links = parent_links(label_parents) + 1  # positions: label i at i + 1, the root ([CLS]) at 0
    pairs = [links, links.flip(0)]
    if self_attention:
        pairs.append(torch.arange(n + 2).expand(2, -1))
    else:
        pairs.append(torch.full((2, 1), n + 1))
    edges = torch.unique(torch.cat(pairs, dim=1), dim=1)  # sorted by receiver, then sender; duplicates dropped
    return edges


def local_hierarchy_mask(text_mask: torch.Tensor, slot_mask: torch.Tensor) -> torch.Tensor:
    """``[B, S + 2T, S + 2T]`` seq2seq mask over ``[text (S) | gold slots (T) | mask slots (T)]``.

    Args:
        text_mask: ``[B, S]`` True on real text tokens.
        slot_mask: ``[B, T]`` True on the label slots in use (levels of the path plus the stop slot).

    Rules: text sees real text only; gold slot ``j`` sees text and gold slots ``<= j``; mask slot ``j``
    sees text, gold slots ``< j`` and itself. Unused slots are never keys; each unused query row still
    sees the text, so no row is empty.
    """
    b, s = text_mask.shape
    t = slot_mask.shape[1]
    device = text_mask.device
    text_keys = text_mask[:, None, :].expand(b, s + 2 * t, s)
    causal = torch.ones(t, t, dtype=torch.bool, device=device).tril()
    gold_keys = torch.zeros(b, s + 2 * t, t, dtype=torch.bool, device=device)
    gold_keys[:, s : s + t] = causal  # gold j -> gold <= j
    gold_keys[:, s + t :] = causal.tril(-1)  # mask j -> gold < j
    gold_keys &= slot_mask[:, None, :]
    mask_keys = torch.zeros(b, s + 2 * t, t, dtype=torch.bool, device=device)
    mask_keys[:, s + t :] = torch.eye(t, dtype=torch.bool, device=device)  # mask j -> itself
    return torch.cat([text_keys, gold_keys, mask_keys], dim=2)


def decoding_mask(text_mask: torch.Tensor, num_fed: int, num_queries: int | None = None) -> torch.Tensor:
    """``[B, Q, S + k + 1]`` mask over ``[text | k fed level slots | one mask slot]`` (Eq. 10): text sees
    text; fed slot ``j`` sees text and fed slots ``<= j``; the mask slot sees text, every fed slot and
    itself. It is the training mask restricted to the slots present at that step.

    ``num_queries``: only the last ``Q`` query rows (what a cached step feeds); default all ``S + k + 1``.
    """
    b, s = text_mask.shape
    t = num_fed + 1
    q = s + t if num_queries is None else num_queries
    text_keys = text_mask[:, None, :].expand(b, q, s)
    slot_keys = torch.zeros(s + t, t, dtype=torch.bool, device=text_mask.device)
    slot_keys[s:] = torch.ones(t, t, dtype=torch.bool, device=text_mask.device).tril()
    return torch.cat([text_keys, slot_keys[-q:].expand(b, q, t)], dim=2)
