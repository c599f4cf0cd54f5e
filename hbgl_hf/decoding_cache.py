"""The KV cache of HBGL's level-wise decoding: written in place, so the text's keys and values are stored once
instead of being copied again at every level (``DynamicCache`` appends with ``torch.cat``)."""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache, CacheLayerMixin


class PreallocatedLayer(CacheLayerMixin):
    """One attention layer's cache with ``DynamicLayer``'s append / ``crop(-n)`` behaviour over buffers
    ``[B, heads, capacity, head_dim]`` allocated at the first update; ``keys``/``values`` are views of the
    filled prefix ``[B, heads, length, head_dim]``."""

    is_sliding = False
    is_croppable = True

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self.length = 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        b, h, _, _ = key_states.shape
        self.key_buffer = key_states.new_empty(b, h, self.capacity, key_states.shape[-1])
        self.value_buffer = value_states.new_empty(b, h, self.capacity, value_states.shape[-1])
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``[B, heads, n, head_dim]`` states; returns all cached keys and values."""
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if end > self.capacity:
            raise ValueError(f"decoding cache full: {end} positions asked, capacity {self.capacity}")
        self.key_buffer[:, :, self.length : end] = key_states
        self.value_buffer[:, :, self.length : end] = value_states
        self.length = end
        self._set_views()
        return self.keys, self.values

    def _set_views(self) -> None:
        self.keys = self.key_buffer[:, :, : self.length]
        self.values = self.value_buffer[:, :, : self.length]

    def crop(self, tokens_to_remove: int) -> None:
        """Drop the last ``-tokens_to_remove`` positions (the 5.x ``crop(-n)`` convention)."""
        if tokens_to_remove > 0:
            raise ValueError(f"crop takes a negative count of positions to drop, got {tokens_to_remove}")
        if self.is_initialized and tokens_to_remove:
            self.length = max(self.length + tokens_to_remove, 0)
            self._set_views()

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        raise NotImplementedError("the decoding cache does not reorder (no beam search in HBGL decoding)")

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.length + query_length, 0

    def get_seq_length(self) -> int:
        return self.length

    def get_max_length(self) -> int:
        return self.capacity


def decoding_cache(num_layers: int, capacity: int) -> Cache:
    """A cache for ``num_layers`` attention layers holding up to ``capacity`` positions each."""
    return Cache(layers=[PreallocatedLayer(capacity) for _ in range(num_layers)])
