"""HPT's prompt (paper §4.1.1, Table 5): ``[CLS] text [SEP] V_1 [PRED] V_2 [PRED] ... V_D [PRED] [SEP]``.

The model takes ordinary tokenizer output (``[CLS] text [SEP]``; left-padded rows are first moved to the right
layout by :func:`right_align_padding`) and appends the template after each text's real length, so any BERT
tokenizer, the Trainer's collators and pipelines work unchanged.
"""

from __future__ import annotations

import torch


def right_align_padding(input_ids: torch.Tensor, attention_mask: torch.Tensor,
                        token_type_ids: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Left-padded rows (``tokenizer.padding_side = "left"``) -> right-padded rows, the layout the model builds on.

    Each row is rotated left by its number of padding positions before the first real token (one gather by a
    per-row index, no host sync), so its tokens start at position 0; right-padded rows are unchanged.

    Args:
        input_ids, attention_mask, token_type_ids: ``[B, S]`` (``token_type_ids`` optional).
    Returns: the same tensors, ``[B, S]``, right-padded (``None`` stays ``None``).
    """
    width = attention_mask.shape[1]
    leading = (attention_mask.cumsum(-1) == 0).sum(-1, keepdim=True)  # [B, 1] padding before the first token
    index = (torch.arange(width, device=attention_mask.device)[None, :] + leading) % max(width, 1)  # [B, S]
    return (input_ids.gather(1, index), attention_mask.gather(1, index),
            None if token_type_ids is None else token_type_ids.gather(1, index))


def template_token_ids(virtual_ids: list[int], pred_id: int, sep_id: int) -> list[int]:
    """``V_1 [PRED] ... V_D [PRED] [SEP]`` (length ``2 D + 1``)."""
    return [token for virtual in virtual_ids for token in (virtual, pred_id)] + [sep_id]


def build_prompt_inputs(input_ids: torch.Tensor, attention_mask: torch.Tensor, template: torch.Tensor,
                        max_length: int, sep_id: int, pad_id: int,
                        keep_text_sep: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Append the template after each text, truncating the text so that everything fits in ``max_length``.

    Args:
        input_ids, attention_mask: ``[B, S]`` right-padded ``[CLS] text [SEP]``.
        template: ``[T]`` from :func:`template_token_ids`.
        keep_text_sep: keep the text's ``[SEP]`` before the template (paper); False drops it (authors' code).
    Returns:
        prompt_ids, prompt_mask: ``[B, S']`` (``S' <= max_length``), the text cut to fit (a cut text still
        ends in ``[SEP]`` in the paper layout) followed by the template, then padding.
        pred_positions: ``[B, D]`` index of each depth's ``[PRED]``.
        text_mask: ``[B, S']`` bool, the kept text tokens (``[CLS]``/``[SEP]`` included).
    """
    b, s = input_ids.shape
    t = template.shape[0]
    keep_max = max_length - t  # text tokens that fit before the template
    lengths = attention_mask.sum(-1)
    text_width = s if keep_text_sep else s - 1
    if not keep_text_sep:
        lengths = lengths - 1  # drop the trailing [SEP] (reference: no [SEP] between text and template)
    keep = lengths.clamp(max=keep_max)  # [B]
    kept_width = min(text_width, keep_max)
    width = kept_width + t
    device = input_ids.device
    index = torch.arange(width, device=device)[None, :]
    text_mask = index < keep[:, None]
    template_index = index - keep[:, None]
    in_template = (template_index >= 0) & (template_index < t)
    text = torch.full((b, width), pad_id, dtype=input_ids.dtype, device=device)
    text[:, :kept_width] = input_ids[:, :kept_width]
    if keep_text_sep:  # a cut text keeps its closing [SEP] (no host sync: written where the text was cut)
        rows, last = torch.arange(b, device=device), (keep - 1).clamp(min=0)
        text[rows, last] = torch.where(lengths > keep_max, sep_id, text[rows, last])
    template_tokens = template.to(device)[template_index.clamp(0, t - 1)]
    prompt_ids = torch.where(text_mask, text, torch.where(in_template, template_tokens, pad_id))
    depth = (t - 1) // 2
    pred_positions = keep[:, None] + 2 * torch.arange(depth, device=device)[None, :] + 1
    return prompt_ids, (text_mask | in_template).long(), pred_positions, text_mask
