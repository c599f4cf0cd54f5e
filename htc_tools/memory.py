"""Host memory of CPU training: oneDNN's per-shape kernel caches and glibc's freed pages.

HBGL's label pre-training computes, at every step, only what that step's masked slots need, so every step's
matrices have other row counts. On CPU, bf16 matrix products and the GELU go through oneDNN, which builds a kernel
("primitive") for each new shape and keeps it in two caches of 1,024 entries each (oneDNN's primitive cache and
ideep's LRU cache in torch), about half a megabyte an entry. Measured on 319 labels (MiniLM, batch 32, bf16):
the heap in use grew by 11 MB a step, and those long-lived entries, allocated between the step's tensors, kept the
freed tensor pages from being reused or handed back: the process grew to 8.2 GiB in 100 steps. Handing the pages
back after every step (``malloc_trim``) bounded it at 3.0 GiB, at the price of the kernel zero-filling 2-3 GB of
fresh pages every step (a third of the CPU time, steps 1.7-1.9 s). With both caches capped at 16 entries the heap
stays flat without the trim (1.8 GiB, steps 1.2 s), and fine-tuning, whose shapes repeat, keeps its speed (a bf16
MiniLM step measured the same with 16 entries as with 1,024).

The capacities are read from the environment once, when the process builds its first oneDNN kernel: the training
script sets them (:func:`bound_onednn_caches`) before it loads a model. In your own script, set them before the
first forward pass, or in the shell: ``ONEDNN_PRIMITIVE_CACHE_CAPACITY=16 LRU_CACHE_CAPACITY=16``.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

ONEDNN_CACHE_VARIABLES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")  # oneDNN's, ideep's (in torch)
ONEDNN_CACHE_CAPACITY = 16


def bound_onednn_caches(capacity: int = ONEDNN_CACHE_CAPACITY) -> dict[str, str]:
    """Cap oneDNN's and ideep's kernel caches at ``capacity`` entries unless the environment already sets them.
    Effective only before the process's first oneDNN kernel. Returns the values in effect."""
    if not isinstance(capacity, int) or capacity < 1:  # ideep's cache crashes the process at 0
        raise ValueError(f"the oneDNN cache capacity must be an integer >= 1, got {capacity!r}")
    for name in ONEDNN_CACHE_VARIABLES:
        os.environ.setdefault(name, str(capacity))
    return {name: os.environ[name] for name in ONEDNN_CACHE_VARIABLES}


def onednn_caches_bounded() -> bool:
    """Whether both cache capacities are set in the environment (to any value)."""
    return all(name in os.environ for name in ONEDNN_CACHE_VARIABLES)


def _glibc_malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl)
        return None


_MALLOC_TRIM = _glibc_malloc_trim()


def release_freed_memory() -> bool:
    """Return the process's free heap pages to the OS; ``False`` where glibc's ``malloc_trim`` is not available."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


class ReleaseFreedMemoryCallback(TrainerCallback):
    """:func:`release_freed_memory` at the end of training: a stage's working memory goes back to the OS before the
    next stage. (Not after every step: with the caches bounded the heap is reused, and a trim per step would make the
    kernel zero-fill the next step's pages again.)"""

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: object) -> None:
        release_freed_memory()
