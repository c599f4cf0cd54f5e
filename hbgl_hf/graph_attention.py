"""Attention restricted to the edges of a graph, in plain torch (no torch-geometric, no ``[N, N]`` matrix).

HBGL's label-graph sequence (paper Eq. 2) lets each label attend to its parents, its children and itself only,
so a dense ``[L + 2, L + 2]`` mask spends almost all of its attention work (and, under dropout, the CPU's
``sdpa`` math path with its ``[B, heads, L, L]`` probability, dropout and mask tensors) on pairs that are masked
out. Here the scores are computed for the ``E`` edges only and normalised per receiving position (a segment
softmax): ``O(E)`` memory and time, the same probabilities as the masked dense softmax (masked entries have
weight exactly 0 there).

The function is registered as the attention implementation ``"hbgl_label_graph"`` of the ``transformers``
attention interface, so any encoder that dispatches through ``ALL_ATTENTION_FUNCTIONS`` can run it: pass the
edges as the keyword ``label_graph=(receivers, senders)``, indices into the ``B * N`` flattened positions
(row ``b``'s position ``i`` is ``b * N + i``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AttentionInterface

from .hierarchy_index import edge_sum, gather_sum_by, segment_softmax

ATTENTION_NAME = "hbgl_label_graph"


class _EdgeScores(torch.autograd.Function):
    """``q [P, h, d], k [P, h, d]`` -> ``[E, h]`` dot products ``q[receivers] . k[senders]``; saves only ``q`` and
    ``k`` (not the ``[E, h, d]`` gathers, which backward recomputes)."""

    @staticmethod
    def forward(ctx, q, k, receivers, senders):
        ctx.save_for_backward(q, k, receivers, senders)
        return (q.index_select(0, receivers) * k.index_select(0, senders)).sum(-1)

    @staticmethod
    def backward(ctx, grad):
        q, k, receivers, senders = ctx.saved_tensors
        grad_q = gather_sum_by(grad, k, senders, receivers, q.shape[0])
        grad_k = gather_sum_by(grad, q, receivers, senders, k.shape[0])
        return grad_q, grad_k, None, None


def edge_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, receivers: torch.Tensor,
                   senders: torch.Tensor, scaling: float, dropout: float = 0.0, training: bool = False
                   ) -> torch.Tensor:
    """Scaled dot-product attention over an edge list. Memory: ``O(E * heads)`` kept for backward (the ``[E, heads,
    d]`` gathers are recomputed there).

    Args:
        query, key, value: ``[B, heads, N, d]`` (typically transposed views of ``[B, N, heads, d]`` projections:
            they are read position-major without a copy).
        receivers, senders: ``[E]`` indices into the ``B * N`` flattened positions: position ``receivers[e]``
            attends to ``senders[e]``. Every position must receive at least one edge.
        dropout: on the attention probabilities (as the encoder's own attention in train mode).
    Returns: ``[B, N, heads, d]`` (the layout of ``transformers``' attention functions).
    """
    b, h, n, d = query.shape
    q, k, v = (x.transpose(1, 2).reshape(b * n, h, d) for x in (query, key, value))  # [B * N, heads, d]
    # the [E, heads, d] products in the projections' dtype (bf16 under a bf16 autocast), the softmax of the
    # [E, heads] scores in at least float32
    scores = _EdgeScores.apply(q, k, receivers, senders).to(torch.promote_types(q.dtype, torch.float32)) * scaling
    probabilities = F.dropout(segment_softmax(scores, receivers, b * n), dropout, training)
    return edge_sum(probabilities.to(v.dtype), v, receivers, senders).view(b, n, h, d)


def label_graph_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                          attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                          label_graph: tuple[torch.Tensor, torch.Tensor] | None = None, **kwargs: object
                          ) -> tuple[torch.Tensor, None]:
    """The ``transformers`` attention-interface entry point of :func:`edge_attention` (the mask is unused)."""
    if label_graph is None:
        raise ValueError(f"attention '{ATTENTION_NAME}' needs the edges: call the encoder with label_graph=(r, s)")
    if attention_mask is not None:
        raise ValueError(f"attention '{ATTENTION_NAME}' takes its edges from label_graph, not an attention mask")
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    receivers, senders = label_graph
    return edge_attention(query, key, value, receivers, senders, scaling, dropout, module.training), None


AttentionInterface.register(ATTENTION_NAME, label_graph_attention)


@contextlib.contextmanager
def attention_implementation(config: object, name: str) -> Iterator[None]:
    """Run the encoder with attention ``name`` inside the block (the config's own setting restored after)."""
    previous = config._attn_implementation
    config._attn_implementation = name
    try:
        yield
    finally:
        config._attn_implementation = previous
