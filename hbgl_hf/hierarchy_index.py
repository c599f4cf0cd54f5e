"""Index-based hierarchy helpers, ``O(L)`` where a dense ``[L, L]`` parent matrix is ``O(L^2)`` (38 GB in float32 at
ICD-10-CM's 98.5k labels). The same file ships in ``hbgl_hf`` and ``hpt_hf`` (each package is self-contained); a
test keeps the two copies identical.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def parent_links(label_parents: Sequence[Sequence[int]], root: int | None = -1) -> torch.Tensor:
    """``[2, P]`` long: one column ``(child, parent)`` per parent link, in child order. A top-level label links to
    ``root`` (``-1``: the root); ``root=None`` leaves top-level labels out (real parents only)."""
    pairs = [(child, parent) for child, parents in enumerate(label_parents)
             for parent in (parents or ([] if root is None else [root]))]
    return torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).T.contiguous()


def any_parent_selected(selected: torch.Tensor, links: torch.Tensor) -> torch.Tensor:
    """``[B, L]`` bool and the real-parent :func:`parent_links` ``[2, P]`` -> ``[B, L]`` bool: True where at least
    one parent of the label is selected (False for top-level labels). Equals ``selected @ P.T > 0`` with the dense
    parent matrix ``P[child, parent]``."""
    hits = selected[:, links[1]].to(torch.int32)  # [B, P]
    counts = torch.zeros(selected.shape, dtype=torch.int32, device=selected.device).index_add_(1, links[0], hits)
    return counts > 0


def segment_sum(values: torch.Tensor, index: torch.Tensor, num_segments: int) -> torch.Tensor:
    """Rows of ``values`` ``[E, ...]`` summed per ``index`` ``[E]`` (``0 .. num_segments - 1``) ->
    ``[num_segments, ...]`` in ``values``' dtype, accumulated in at least float32 (a bf16 running sum stalls: 300
    ones add up to 256). ``index_add_`` into zeros: on CPU several times faster than ``torch.segment_reduce`` at the
    label-graph attention's ``[E, heads, d]`` shapes (measured, most of all in bf16), in any index order; an index
    out of range is an error (``index_add_``'s). Integers are summed as integers. On CUDA ``index_add_`` adds with
    atomics: float sums may differ in the last bits from run to run unless deterministic algorithms are on."""
    floating = values.is_floating_point()
    accumulate = torch.promote_types(values.dtype, torch.float32) if floating else values.dtype
    total = values.new_zeros((num_segments, *values.shape[1:]), dtype=accumulate)
    return total.index_add_(0, index, values.to(accumulate)).to(values.dtype)


def segment_softmax(scores: torch.Tensor, segments: torch.Tensor, num_segments: int) -> torch.Tensor:
    """Softmax of ``scores`` ``[E, ...]`` within each segment of rows (``segments`` ``[E]`` in
    ``0 .. num_segments - 1``; e.g. the receiving node of each edge), the segment's maximum subtracted first (as
    ``torch.softmax``): the attention weights of a masked dense softmax, for the unmasked pairs only. ``[E, ...]``."""
    shape = (num_segments, *scores.shape[1:])
    index = segments.view(-1, *([1] * (scores.dim() - 1))).expand_as(scores)
    maximum = scores.new_full(shape, float("-inf")).scatter_reduce(0, index, scores.detach(), "amax")
    exp = (scores - maximum.index_select(0, segments)).exp()
    return exp / segment_sum(exp, segments, num_segments).index_select(0, segments)


def word_piece_rows(tokenizer: object, texts: Sequence[str], table: torch.Tensor, mode: str = "mean",
                    add_special_tokens: bool = False) -> torch.Tensor:
    """``[len(texts), H]``: per text, the mean (or ``mode="sum"``) of its word pieces' rows of ``table`` (a text
    without pieces: the unknown token). One batched tokenizer call and one ``embedding_bag``: the same rows as a
    per-label loop, in seconds at 100k labels."""
    pieces = tokenizer(list(texts), add_special_tokens=add_special_tokens)["input_ids"]
    pieces = [ids or [tokenizer.unk_token_id] for ids in pieces]
    offsets = torch.tensor([0, *[len(ids) for ids in pieces[:-1]]], dtype=torch.long).cumsum(0)
    flat = torch.tensor([i for ids in pieces for i in ids], dtype=torch.long, device=table.device)
    return torch.nn.functional.embedding_bag(flat, table, offsets.to(table.device), mode=mode)


def gather_sum_by(weights: torch.Tensor, gathered_from: torch.Tensor, gather_index: torch.Tensor,
                  sum_index: torch.Tensor, num_segments: int) -> torch.Tensor:
    """``sum over e with sum_index[e] = i of weights[e] * gathered_from[gather_index[e]]`` -> ``[num_segments, *, d]``
    (``weights`` ``[E, *]``, ``gathered_from`` ``[N, *, d]``), in the two inputs' promoted dtype; the ``[E, *, d]``
    products and their sums in at least float32 (:func:`segment_sum`)."""
    dtype = torch.promote_types(weights.dtype, gathered_from.dtype)
    accumulate = torch.promote_types(dtype, torch.float32)
    # cast the N rows before gathering rather than the E gathers; multiply in place where no graph records it
    products = gathered_from.to(accumulate).index_select(0, gather_index)
    scale = weights.to(accumulate)[..., None]
    in_place = not torch.is_grad_enabled() and torch.broadcast_shapes(products.shape, scale.shape) == products.shape
    products = products.mul_(scale) if in_place else products * scale
    return segment_sum(products, sum_index, num_segments).to(dtype)


class _EdgeSum(torch.autograd.Function):
    """``p [E, *], v [N, *, d]`` -> ``[R, *, d]``: ``out[i] = sum over edges (i <- j) of p_e v[j]``; keeps ``p`` and
    ``v`` for backward, not the ``[E, *, d]`` gather (which is most of the memory when E is several times N)."""

    @staticmethod
    def forward(ctx, p, v, receivers, senders, num_receivers):
        ctx.save_for_backward(p, v, receivers, senders)
        return gather_sum_by(p, v, senders, receivers, num_receivers)

    @staticmethod
    def backward(ctx, grad):
        p, v, receivers, senders = ctx.saved_tensors
        grad_p = grad.index_select(0, receivers).mul_(v.index_select(0, senders)).sum(-1)  # mul_: a fresh gather
        grad_v = gather_sum_by(p, grad, receivers, senders, v.shape[0])
        return grad_p, grad_v, None, None, None


def edge_sum(weights: torch.Tensor, values: torch.Tensor, receivers: torch.Tensor, senders: torch.Tensor,
             num_receivers: int | None = None) -> torch.Tensor:
    """Weighted sum of each receiver's incoming messages: ``weights`` ``[E, *]``, ``values`` ``[N, *, d]`` ->
    ``[R, *, d]`` (:class:`_EdgeSum`); receivers number ``R = num_receivers`` (default ``N``: one set of nodes)."""
    rows = values.shape[0] if num_receivers is None else num_receivers
    return _EdgeSum.apply(weights, values, receivers, senders, rows)
