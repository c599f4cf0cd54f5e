"""Learning rates per parameter group (issue #14): the heads and graph layers, and the label rows, apart from the
encoder.

HBGL's and HPT's label rows are the last rows of the word-embedding table (``config.label_token_offset`` onwards,
tied to the MLM decoder), one tensor with the encoder's vocabulary, so an optimiser group cannot hold them alone.
``scale_label_row_updates`` scales their update after each step instead: for SGD and AdamW (decoupled weight
decay included) the step is linear in the learning rate, so scaling it by ``label_lr / lr`` is that step at
``label_lr`` (up to float32 rounding), and the moment estimates, which do not depend on the learning rate, are
unchanged. Not for DeepSpeed or FSDP, whose optimiser steps other copies of the weights (refused).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle


def split_head_learning_rate(optimizer: torch.optim.Optimizer, model: nn.Module, head_learning_rate: float) -> int:
    """Splits each parameter group of a fresh ``optimizer`` in two: the encoder's parameters (HBGL's and HPT's
    ``backbone``, whatever its family; else ``model.base_model``; tied label rows included) keep the group's
    learning rate, the others get ``head_learning_rate``. Returns the number of head parameters."""
    encoder = getattr(model, "backbone", None) or model.base_model
    if encoder is model:
        raise ValueError(f"{type(model).__name__} has no encoder apart from its head: --head_learning_rate cannot "
                         "split its parameters")
    in_encoder = {id(p) for p in encoder.parameters()}
    head = {id(p) for p in model.parameters() if id(p) not in in_encoder}
    groups = []
    for group in optimizer.param_groups:
        for is_head in (False, True):
            params = [p for p in group["params"] if (id(p) in head) == is_head]
            if params:
                groups.append({**group, "params": params, **({"lr": head_learning_rate} if is_head else {})})
    optimizer.param_groups.clear()
    for group in groups:
        optimizer.add_param_group(group)
    return len(head)


# optimisers whose step is linear in the learning rate with state that does not depend on it (AdamW: decoupled
# weight decay included); schedule-free, LOMO, Adafactor's relative steps and the like are refused
LINEAR_IN_LR = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD, torch.optim.RMSprop)


def label_row_obstacle(optimizer: torch.optim.Optimizer, model: nn.Module) -> str | None:
    """Why ``model``'s label rows cannot get their own rate under ``optimizer`` (a sentence naming the flag to
    change), or None when :func:`scale_label_row_updates` applies."""
    if not isinstance(optimizer, LINEAR_IN_LR):
        return (f"--label_learning_rate scales AdamW/Adam/SGD/RMSprop updates, whose step is linear in the learning "
                f"rate; not {type(optimizer).__name__} (choose --optim adamw_torch or sgd)")
    if getattr(model.config, "label_token_offset", None) is None:
        return f"{type(model).__name__} has no label rows in its word-embedding table: --label_learning_rate is for " \
               "HBGL and HPT"
    table = model.get_input_embeddings().weight
    if table.dim() != 2 or table.shape[0] != model.config.vocab_size or table.dtype != torch.float32:
        return (f"--label_learning_rate needs the whole float32 word-embedding table in this process, got a "
                f"{table.dtype} tensor of shape {tuple(table.shape)} (sharded or low-precision weights)")
    decoder = getattr(getattr(model, "cls", None), "decoder", None)
    if decoder is not None and decoder.weight is not table:
        return ("--label_learning_rate needs the MLM decoder tied to the word embeddings (tie_word_embeddings=True), "
                "or the decoder's label rows would keep another rate")
    if not any(p is table for g in optimizer.param_groups for p in g["params"]):
        return "the word-embedding table is not trained by this optimiser: --label_learning_rate has nothing to scale"
    return None


def scale_label_row_updates(optimizer: torch.optim.Optimizer, model: nn.Module,
                            label_learning_rate: float) -> tuple[RemovableHandle, RemovableHandle]:
    """Gives the label rows (word-embedding rows ``label_token_offset`` onwards, tied to the MLM decoder: HBGL's
    labels; HPT's label words, virtual depth tokens and [PRED]) ``label_learning_rate`` while the rest of the table
    keeps its group's rate. Their score biases (``cls.bias``, HPT's ``label_bias``) stay with the heads.

    A pre-step hook keeps the rows (one ``[labels, hidden]`` copy per step); the post-step hook scales their update
    by ``label_learning_rate / initial_lr`` of the table's group (read at the first step, after a checkpoint's
    optimiser state is loaded), so any schedule that scales every group alike applies to the label rows too; a
    floor such as ``min_lr`` floors them at ratio x that floor. Exact up to float32 rounding. Returns the hooks;
    raises ValueError where :func:`label_row_obstacle` names an obstacle."""
    if not label_learning_rate >= 0:
        raise ValueError(f"--label_learning_rate must be >= 0, got {label_learning_rate}")
    obstacle = label_row_obstacle(optimizer, model)
    if obstacle is not None:
        raise ValueError(obstacle)
    offset = model.config.label_token_offset
    table = model.get_input_embeddings().weight
    kept: dict[str, torch.Tensor | float] = {}

    def keep_rows(*_: object) -> None:
        if "ratio" not in kept:  # the group's unscheduled rate: the scheduler's initial_lr once it exists
            # looked up here: loading a checkpoint's optimiser state replaces the group dicts
            group = next(g for g in optimizer.param_groups if any(p is table for p in g["params"]))
            base = group.get("initial_lr", group["lr"])
            if not base > 0:
                raise ValueError(f"--label_learning_rate needs a positive --learning_rate, got {base}")
            kept["ratio"] = label_learning_rate / base
        kept["rows"] = table.detach()[offset:].clone()

    @torch.no_grad()
    def scale_update(*_: object) -> None:  # rows <- before + ratio * (rows - before)
        before = kept.pop("rows")
        table.detach()[offset:].sub_(before).mul_(kept["ratio"]).add_(before)

    return optimizer.register_step_pre_hook(keep_rows), optimizer.register_step_post_hook(scale_update)
