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
    """``q [R, h, d], k [S, h, d]`` -> ``[E, h]`` dot products ``q[receivers] . k[senders]``; saves only ``q`` and
    ``k`` (not the ``[E, h, d]`` gathers, which backward recomputes)."""

    @staticmethod
    def forward(ctx, q, k, receivers, senders):
        ctx.save_for_backward(q, k, receivers, senders)
        dtype = torch.promote_types(q.dtype, k.dtype)  # mul_ into a fresh gather, in the promoted dtype
        return q.index_select(0, receivers).to(dtype).mul_(k.index_select(0, senders)).sum(-1)

    @staticmethod
    def backward(ctx, grad):
        q, k, receivers, senders = ctx.saved_tensors
        grad_q = gather_sum_by(grad, k, senders, receivers, q.shape[0])
        grad_k = gather_sum_by(grad, q, receivers, senders, k.shape[0])
        return grad_q, grad_k, None, None


def inverted_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``F.dropout``: zero with probability ``p``, scale the rest by ``1 / (1 - p)``. On CPU the keep mask is drawn as
    ``torch.rand >= p`` and the scale applied in ``x``'s dtype, as torch's CPU dropout does (the same distribution and
    values, another random stream): torch's CPU ``bernoulli_`` takes its fast (MKL) path on Intel CPUs only, and
    elsewhere (this repo's AMD EPYC) it took twice as long as ``rand``, a tenth of a bf16 label pre-training step.
    Other devices use ``F.dropout`` (one fused kernel)."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, training)
    if p == 1.0:
        return x * 0.0
    keep = torch.rand(x.shape, device=x.device) >= p
    return x * keep.to(x.dtype).mul_(1.0 / (1.0 - p))


def attend_on_edges(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, receivers: torch.Tensor, senders: torch.Tensor,
                    scaling: float, dropout: float = 0.0, training: bool = False) -> torch.Tensor:
    """``q`` ``[R, heads, d]`` of the receiving positions, ``k``, ``v`` ``[S, heads, d]`` of the sending ones and the
    ``[E]`` edges (``receivers`` into ``0 .. R-1``, ``senders`` into ``0 .. S-1``; every receiver has one) ->
    ``[R, heads, d]``. The ``[E, heads, d]`` products in the projections' dtype (bf16 under a bf16 autocast), the
    softmax of the ``[E, heads]`` scores in at least float32."""
    scores = _EdgeScores.apply(q, k, receivers, senders).to(torch.promote_types(q.dtype, torch.float32)) * scaling
    probabilities = inverted_dropout(segment_softmax(scores, receivers, q.shape[0]), dropout, training)
    return edge_sum(probabilities.to(v.dtype), v, receivers, senders, q.shape[0])


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
    return attend_on_edges(q, k, v, receivers, senders, scaling, dropout, training).view(b, n, h, d)


def _senders_closure(wanted: torch.Tensor, receivers: torch.Tensor, senders: torch.Tensor) -> torch.Tensor:
    """``[P]`` bool of wanted positions -> ``[P]`` bool: those and every position one of them attends to."""
    closed = wanted.clone()
    closed[senders[wanted[receivers]]] = True
    return closed


def encode_wanted_positions(encoder: nn.Module, hidden: torch.Tensor, receivers: torch.Tensor, senders: torch.Tensor,
                            wanted: torch.Tensor) -> torch.Tensor:
    """A BERT-layout encoder's last hidden states at the ``wanted`` positions only, attention on the edges.

    The last layer's queries, attention output and feed-forward are computed for the wanted positions, its keys and
    values for the positions they attend to; each layer below for the positions the one above reads (the wanted
    positions' ``k``-hop senders). The states are the full run's at those positions (up to float rounding; test);
    in HBGL's label pre-training, where only the masked slots are scored (15-45 % of them), it saves about a sixth of
    the encoder's work.

    Args:
        encoder: the encoder stack (``.layer``: ``BertLayer``-shaped modules, ``attention.self.query/key/value``,
            ``attention.output.dense/LayerNorm/dropout``, ``intermediate``, ``output.dense/LayerNorm/dropout``).
        hidden: ``[P, H]`` the embedding output of the ``P`` flattened positions.
        receivers, senders: ``[E]`` edges between those positions (position ``receivers[e]`` attends to
            ``senders[e]``; every position that is computed receives one).
        wanted: ``[P]`` bool, the positions to return.
    Returns: ``[M, H]``, the wanted positions' states in position order.

    The layers' sub-modules are called directly (not ``layer(...)``), down to the dense, dropout and LayerNorm
    modules of ``BertSelfOutput`` and ``BertOutput``: forward hooks on a whole layer or on those two modules (e.g.
    adapters inserted there) and gradient checkpointing do not apply here (the stage uses none of them).
    """
    layers = list(encoder.layer)
    outputs = [wanted]  # outputs[i]: the positions layer i must produce, built from the top down
    for _ in layers[1:]:
        outputs.insert(0, _senders_closure(outputs[0], receivers, senders))
    rows = _senders_closure(outputs[0], receivers, senders)  # the positions the first layer reads
    x = hidden[rows]
    for layer, produce in zip(layers, outputs, strict=True):
        local = torch.full(rows.shape, -1, dtype=torch.long, device=hidden.device)
        local[rows] = torch.arange(int(rows.sum()), device=hidden.device)
        target = torch.full(rows.shape, -1, dtype=torch.long, device=hidden.device)
        target[produce] = torch.arange(int(produce.sum()), device=hidden.device)
        edge = produce[receivers]
        x = _layer_on_edges(layer, x, local[produce], target[receivers[edge]], local[senders[edge]])
        rows = produce
    return x


def _layer_on_edges(layer: nn.Module, x: torch.Tensor, query_rows: torch.Tensor, receivers: torch.Tensor,
                    senders: torch.Tensor) -> torch.Tensor:
    """One ``BertLayer`` on ``x`` ``[S, H]``, producing the ``query_rows`` ``[R]`` only (receivers index those,
    senders ``x``'s rows) -> ``[R, H]``. ``BertSelfOutput`` and ``BertOutput`` (dense, dropout, LayerNorm of the sum
    with the residual) are spelled out to draw their dropout with :func:`inverted_dropout`; with the layer's own
    probabilities, in train mode only."""
    attention = layer.attention.self
    heads, size = attention.num_attention_heads, attention.attention_head_size
    x_out = x.index_select(0, query_rows)
    q = attention.query(x_out).view(-1, heads, size)
    k, v = attention.key(x).view(-1, heads, size), attention.value(x).view(-1, heads, size)
    context = attend_on_edges(q, k, v, receivers, senders, attention.scaling, attention.dropout.p, layer.training)
    self_output, output = layer.attention.output, layer.output
    hidden = self_output.dense(context.reshape(len(query_rows), -1))
    hidden = self_output.LayerNorm(inverted_dropout(hidden, self_output.dropout.p, layer.training) + x_out)
    out = output.dense(layer.intermediate(hidden))
    return output.LayerNorm(inverted_dropout(out, output.dropout.p, layer.training) + hidden)


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
