"""Learning rates per parameter group (issue #14): the heads and graph layers, and the label rows, apart from the
encoder.

HBGL's and HPT's label rows are the last rows of the word-embedding table (``config.label_token_offset`` onwards,
tied to the MLM decoder), one tensor with the encoder's vocabulary, so an optimiser group cannot hold them alone.
``scale_label_row_updates`` scales their update after each step instead: for SGD and AdamW (decoupled weight
decay included) the step is linear in the learning rate, so scaling it by ``label_lr / lr`` is that step at
``label_lr``, and the moment estimates, which do not depend on the learning rate, are unchanged.
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


def scale_label_row_updates(optimizer: torch.optim.Optimizer, model: nn.Module,
                            label_learning_rate: float) -> tuple[RemovableHandle, RemovableHandle]:
    """Gives the label rows (word-embedding rows ``label_token_offset`` onwards: HBGL's labels; HPT's label words,
    virtual depth tokens and [PRED]) ``label_learning_rate`` while the rest of the table keeps its group's rate.

    Call it on a fresh ``optimizer`` (before a scheduler rescales its groups): the ratio ``label_learning_rate /
    lr`` of the table's group is fixed then and holds under any schedule that scales every group alike. Returns
    the step hooks' handles."""
    offset = getattr(model.config, "label_token_offset", None)
    if offset is None:
        raise ValueError(f"{type(model).__name__} has no label rows in its word-embedding table: "
                         "--label_learning_rate is for HBGL and HPT")
    table = model.get_input_embeddings().weight
    group = next((g for g in optimizer.param_groups if any(p is table for p in g["params"])), None)
    if group is None:
        raise ValueError("the word-embedding table is not trained by this optimiser: --label_learning_rate has "
                         "nothing to scale")
    if not group["lr"] > 0:
        raise ValueError(f"--label_learning_rate needs a positive learning rate for the encoder, got {group['lr']}")
    ratio = label_learning_rate / group["lr"]
    before: list[torch.Tensor] = []

    def keep_rows(*_: object) -> None:
        before[:] = [table.detach()[offset:].clone()]

    @torch.no_grad()
    def scale_update(*_: object) -> None:  # rows <- before + ratio * (rows - before)
        rows = table.detach()[offset:]
        rows.sub_(before[0]).mul_(ratio).add_(before[0])
        before.clear()

    return optimizer.register_step_pre_hook(keep_rows), optimizer.register_step_post_hook(scale_update)
