"""Hierarchy injection (HPT §4.1.2, Eq. 4-5): a GAT over the label nodes plus one virtual node per depth.

Attention on the graph's edge list in plain torch (no torch-geometric): a scatter softmax over each node's
incoming edges, ``O(N + E)`` (the dense ``[N, N]`` neighbour mask, still accepted by the layer, is 9.7 GB at
ICD-10-CM's 98.5k labels). Nodes ``0 .. L-1`` are labels, ``L .. L+D-1`` the virtual depth nodes ``t_1 .. t_D``;
virtual node ``d`` is linked to every label of depth ``d``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .hierarchy_index import edge_sum, segment_softmax


def hierarchy_adjacency(label_parents: list[list[int]], label_levels: list[int],
                        directed: bool = False) -> torch.Tensor:
    """``[N, N]`` bool, ``A[i, j]`` = node ``i`` receives from node ``j`` (self-loops included), N = L + D.

    ``directed=False`` (paper): every parent-child edge (all parents of a multi-parent label) and every
    virtual-label edge both ways. ``directed=True`` (authors' code, edge_index = (parent, child)): messages
    flow parent -> child and virtual -> label only, so a virtual node hears only itself.
    """
    num_labels, depth = len(label_parents), max(label_levels, default=0)
    n = num_labels + depth
    adjacency = torch.eye(n, dtype=torch.bool)
    for child, parents in enumerate(label_parents):
        for parent in parents:
            adjacency[child, parent] = True  # child hears its parent
            if not directed:
                adjacency[parent, child] = True
    for label, level in enumerate(label_levels):
        virtual = num_labels + level - 1
        adjacency[label, virtual] = True  # label hears its depth's virtual node
        if not directed:
            adjacency[virtual, label] = True
    return adjacency


def hierarchy_edges(label_parents: list[list[int]], label_levels: list[int], directed: bool = False) -> torch.Tensor:
    """``[2, E]`` long ``(receiver, sender)``: the True entries of :func:`hierarchy_adjacency` in the same row-major
    order (``hierarchy_adjacency(...).nonzero().T``), built in ``O(N + E)``."""
    num_labels, depth = len(label_parents), max(label_levels, default=0)
    pairs = [(child, parent) for child, parents in enumerate(label_parents) for parent in parents]
    pairs += [(label, num_labels + level - 1) for label, level in enumerate(label_levels)]
    heard = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).T  # [2, *] (receiver, sender): child hears parent
    loops = torch.arange(num_labels + depth).expand(2, -1)
    edges = [heard, loops] if directed else [heard, heard.flip(0), loops]
    return torch.unique(torch.cat(edges, dim=1), dim=1)


class GraphAttentionLayer(nn.Module):
    """One single-head GAT layer (Velickovic et al.; torch-geometric ``GATConv`` defaults) with HPT's residual:
    ``x <- x + Dropout(GAT(x))`` (Eq. 5) or, with ``layer_norm``, ``x <- LayerNorm(x + Dropout(GAT(x)))`` (the
    authors' code, reference §2.5).

    GAT: ``x' = W x``; ``alpha_ij = softmax_{j in N(i)}(LeakyReLU_0.2(a_src . x'_j + a_dst . x'_i))``;
    ``out_i = sum_j alpha_ij x'_j + b``.
    """

    def __init__(self, hidden_size: int, dropout: float, layer_norm: bool = False,
                 layer_norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, hidden_size, bias=False)
        self.attention_source = nn.Parameter(torch.empty(hidden_size))
        self.attention_target = nn.Parameter(torch.empty(hidden_size))
        self.bias = nn.Parameter(torch.zeros(hidden_size))
        self.dropout = nn.Dropout(dropout)
        # no LayerNorm parameters under Eq. 5: none unused in the state dict or under DDP
        self.layer_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps) if layer_norm else nn.Identity()
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Glorot init as in ``GATConv`` (the attention vectors as ``[1, H]`` matrices), zero bias."""
        nn.init.xavier_uniform_(self.linear.weight)
        bound = math.sqrt(6.0 / (1 + self.attention_source.numel()))
        self.attention_source.uniform_(-bound, bound)
        self.attention_target.uniform_(-bound, bound)
        self.bias.zero_()

    def forward(self, nodes: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """``nodes`` ``[N, H]`` and the graph as an edge list ``[2, E]`` long (receiver, sender;
        :func:`hierarchy_edges`) or a dense ``[N, N]`` bool (receiver, sender; :func:`hierarchy_adjacency`) ->
        ``[N, H]``. Both give the same result; the edge list is ``O(N + E)``."""
        projected = self.linear(nodes)
        target, source = projected @ self.attention_target, projected @ self.attention_source  # [N] each
        if adjacency.dtype == torch.bool:  # dense
            scores = F.leaky_relu(target[:, None] + source[None, :], 0.2)
            scores = scores.masked_fill(~adjacency, torch.finfo(scores.dtype).min)
            attended = torch.softmax(scores, dim=-1) @ projected + self.bias
        else:
            receivers, senders = adjacency
            weights = segment_softmax(F.leaky_relu(target[receivers] + source[senders], 0.2), receivers, len(nodes))
            attended = edge_sum(weights, projected, receivers, senders) + self.bias
        return self.layer_norm(nodes + self.dropout(attended))


class HierarchyInjection(nn.Module):
    """``K`` stacked :class:`GraphAttentionLayer` over label words + virtual depth tokens (Eq. 4-5; for K > 1 the
    residual is applied at every layer)."""

    def __init__(self, hidden_size: int, num_layers: int, dropout: float, layer_norm: bool = False,
                 layer_norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.layers = nn.ModuleList(GraphAttentionLayer(hidden_size, dropout, layer_norm, layer_norm_eps)
                                    for _ in range(num_layers))

    def forward(self, nodes: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """``[N, H]`` label rows then virtual rows, the graph (edge list or dense, see :class:`GraphAttentionLayer`)
        -> ``[N, H]`` hierarchy-aware rows."""
        for layer in self.layers:
            nodes = layer(nodes, adjacency)
        return nodes
