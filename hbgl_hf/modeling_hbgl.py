"""HBGLForHierarchicalClassification: an encoder (BERT or another family, encoder_backbone.py) models the global
and the local label hierarchy.

Layout of the local sequence (paper §4.2, Eq. 5-9): ``[CLS] text [SEP] | gold slot per level + stop slot |
[MASK] slot per level + stop slot``. Gold slot ``j`` holds the sum of level ``j``'s gold label embeddings
(detached, as in the authors' code), the stop slot holds ``[SEP]``. Label slots continue the positions
after the real text length and use segment 1 (a learned label-type vector where the encoder has no second
segment). Scores: ``transform(h) . e_label + b`` with the decoder tied
to the word-embedding table whose last ``num_labels`` rows are the label embeddings.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig, BertModel, BertPreTrainedModel, Cache
from transformers.models.bert.modeling_bert import BertPredictionHeadTransform
from transformers.utils import ModelOutput

from .configuration_hbgl import HBGLConfig
from .decoding_cache import decoding_cache
from .encoder_backbone import (
    FAMILIES,
    PredictionTransform,
    build_backbone,
    copy_encoder_weights,
    family_of,
    has_token_types,
    load_checkpoint,
    mirrored_settings,
    run_encoder,
    with_label_type,
    word_embeddings,
)
from .hierarchical_pipeline import pipeline_registration
from .hierarchy_index import any_parent_selected, parent_links, word_piece_rows
from .label_pretraining import LabelGraphPretrainer, stage_rows
from .masks import decoding_mask, local_hierarchy_mask, to_backend_mask
from .thresholds import score_thresholds

logger = logging.getLogger(__name__)
BERT_CONFIG_KEYS = frozenset(BertConfig().to_dict()) - {"architectures", "id2label", "label2id", "model_type",
                                                     "transformers_version", "vocab_size"}


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


@dataclass
class HBGLOutput(ModelOutput):
    """``loss`` (training), ``logits`` ``[B, L]``: each label's score at its own level."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


@dataclass
class HBGLDecodeOutput(ModelOutput):
    """``probabilities`` ``[B, L]`` (0 for levels after a path stopped), ``selected`` ``[B, L]`` bool,
    ``logits`` ``[B, L]`` (``-1e4`` after a path stopped)."""

    probabilities: torch.Tensor | None = None
    selected: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class HBGLLabelHead(nn.Module):
    """MLM transform + decoder tied to the word embeddings + bias, evaluated on chosen columns only."""

    def __init__(self, config: HBGLConfig) -> None:
        super().__init__()
        legacy = family_of(config) == "bert"
        self.transform = BertPredictionHeadTransform(config) if legacy else PredictionTransform(config)
        width = config.hidden_size if legacy else (config.embedding_size or config.hidden_size)
        self.decoder = nn.Linear(width, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """``[..., H]`` -> ``[..., len(columns)]`` scores for the vocabulary rows ``columns``."""
        return F.linear(self.transform(hidden), self.decoder.weight[columns], self.bias[columns])


class HBGLForHierarchicalClassification(BertPreTrainedModel):
    config_class = HBGLConfig
    _tied_weights_keys = {"cls.decoder.weight": "bert.embeddings.word_embeddings.weight"}
    _supports_flash_attn = False
    _supports_flex_attn = False
    accepts_loss_kwargs = False  # the loss is a mean: the Trainer must scale it for gradient accumulation

    def __init__(self, config: HBGLConfig) -> None:
        super().__init__(config)
        self.family = family_of(config)
        expected_vocab = config.label_token_offset + config.num_labels
        if config.vocab_size != expected_vocab:
            raise ValueError(f"vocab_size must be label_token_offset + labels = {expected_vocab} (one label row per "
                             f"label after the encoder's words), got {config.vocab_size}: id2label does not match "
                             "the model's label rows; labels cannot be added to or removed from a trained model's "
                             "config.json, train a model on the new taxonomy instead")
        self.depth = config.depth  # the hierarchy is fixed at construction: derive it once
        self.num_level_slots = self.depth + 1  # one slot per level + the stop slot (reference H11)
        if self.num_level_slots * 2 + 2 > config.max_position_embeddings:
            raise ValueError(f"the taxonomy has {self.depth} levels: {self.num_level_slots} label slots do not "
                             f"fit in {config.max_position_embeddings} positions")
        # the stock text-classification pipeline needs this auto_map entry (hf-notes §2.2); AutoModel's is
        # added on save by register_for_auto_class
        sequence_classification = {"AutoModelForSequenceClassification": f"modeling_hbgl.{type(self).__name__}"}
        config.auto_map = {**(getattr(config, "auto_map", None) or {}), **sequence_classification}
        # the hierarchical pipeline travels with every save (Trainer checkpoints included): its file is copied as a
        # relative import of this module, and config.custom_pipelines names it for pipeline(trust_remote_code)
        config.custom_pipelines = {**(getattr(config, "custom_pipelines", None) or {}), **pipeline_registration()}
        if config.problem_type is None:  # the stock pipeline then applies a sigmoid
            config.problem_type = "multi_label_classification"
        if self.family == "bert":  # today's layout: a flat BERT config, the encoder under ``bert``
            self.bert = BertModel(config, add_pooling_layer=False)
            label_types = config.type_vocab_size >= 2
        else:  # any other family: ``encoder_config`` built through the Auto classes, held under ``encoder``
            self.encoder = build_backbone(config)
            self._tied_weights_keys = {"cls.decoder.weight": f"encoder.{FAMILIES[self.family][0]}.weight"}
            label_types = has_token_types(self.family, self.encoder.config)
        self.cls = HBGLLabelHead(config)
        # label slots are segment 1 (Eq. 1, 5) where the encoder has token types; otherwise a learned label-type
        # vector added to the slots' input embeddings, starting at zero (a departure from the paper)
        self.label_type_embedding = None
        if not label_types:
            width = self.get_input_embeddings().weight.shape[1]
            self.label_type_embedding = nn.Parameter(torch.zeros(width))
        self._index_cache: dict[torch.device, dict[str, torch.Tensor]] = {}
        self.post_init()

    def _indices(self) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        """Tensors derived from the config, built once per device (not buffers: a meta-device
        ``from_pretrained`` would leave non-persistent buffers uninitialised)."""
        device = self.get_input_embeddings().weight.device
        if device not in self._index_cache:
            self._index_cache[device] = self._build_indices(device)
        return self._index_cache[device]

    @torch.inference_mode(False)  # normal tensors even when first called under inference_mode (pipelines)
    def _build_indices(self, device: torch.device) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        config = self.config
        offset, num_labels, t = config.label_token_offset, config.num_labels, self.num_level_slots
        columns = torch.arange(offset, offset + num_labels, device=device)
        levels = torch.tensor(config.label_levels, dtype=torch.long, device=device)
        # [T, 1 + L] columns each mask slot is scored on ([SEP] + labels): Eq. 8 ("level") keeps level
        # j's labels, the authors' code ("all") every label.
        if config.loss_columns == "all":
            column_mask = torch.ones(t, 1 + num_labels, dtype=torch.bool, device=device)
        else:
            on_level = levels[None, :] == torch.arange(1, t + 1, device=device)[:, None]
            column_mask = torch.cat([torch.ones(t, 1, dtype=torch.bool, device=device), on_level], dim=1)
        return {
            "label_levels": levels,
            "level_mask": levels[None, :] == torch.arange(1, self.depth + 1, device=device)[:, None],  # [D, L]
            # per level h, the ids of its labels [L_h]: decoding scores only these at level h (issue 15)
            "level_label_ids": [torch.nonzero(levels == h).squeeze(1) for h in range(1, self.depth + 1)],
            "label_columns": columns,
            "head_columns": torch.cat([torch.tensor([config.sep_token_id], device=device), columns]),
            "parent_links": parent_links(config.label_parents, root=None).to(device),  # [2, P] (child, parent)
            "column_mask": column_mask,
        }

    @property
    def label_levels(self) -> torch.Tensor:
        """``[L]`` 1-based level per label."""
        return self._indices()["label_levels"]

    @property
    def label_columns(self) -> torch.Tensor:
        """``[L]`` rows of the label embeddings in the word-embedding table."""
        return self._indices()["label_columns"]

    @property
    def head_columns(self) -> torch.Tensor:
        """``[1 + L]``: [SEP] then the labels, the columns a mask slot is scored on."""
        return self._indices()["head_columns"]

    # ---------------------------------------------------------------- construction
    @property
    def backbone(self) -> nn.Module:
        """The encoder: a ``BertModel`` under ``bert`` or another family's base model under ``encoder``."""
        return self.bert if self.family == "bert" else self.encoder

    def get_input_embeddings(self) -> nn.Embedding:
        return word_embeddings(self.backbone, self.family)

    @property
    def supports_cache(self) -> bool:
        """Whether the encoder can extend a key/value cache (BERT, RoBERTa/XLM-R, ELECTRA)."""
        return FAMILIES[self.family][2]

    @classmethod
    def from_encoder(cls, encoder_name_or_path: str, label_names: list[str], label_parents: list[list[int]],
                     tokenizer=None, label_descriptions: list[str] | None = None,
                     **config_overrides: object) -> HBGLForHierarchicalClassification:
        """Build HBGL on a pretrained encoder of a supported family (encoder_backbone.FAMILIES: BERT, RoBERTa,
        XLM-R, ELECTRA, DistilBERT, DeBERTa-v2/v3, ModernBERT), loaded with ``AutoModelForMaskedLM``.

        The encoder's MLM transform and bias are reused where the checkpoint has them (a fresh transform
        otherwise, e.g. all-MiniLM-L6-v2). ``num_labels`` rows are appended to the word embeddings and
        initialised from the label names (``label_descriptions``, default: the last ``/`` segment of each
        name) as the mean (paper) or sum (``label_init="sum"``, code) of their word-piece embeddings.
        An unsupported family or a checkpoint without encoder weights raises an error naming the family.

        Args:
            label_names: names in taxonomy id order (parents before children).
            label_parents: per label, its parent ids.
        """
        from transformers import AutoTokenizer

        tokenizer = tokenizer or AutoTokenizer.from_pretrained(encoder_name_or_path)
        family, base, head_state, head_bias = load_checkpoint(encoder_name_or_path)
        base_vocab = base.config.vocab_size
        if family == "bert":
            settings = {k: v for k, v in base.config.to_dict().items() if k in BERT_CONFIG_KEYS}
        else:
            settings = mirrored_settings(family, base.config, len(label_names))
        config = HBGLConfig(**{
            **settings, "vocab_size": base_vocab + len(label_names), "id2label": dict(enumerate(label_names)),
            "label_parents": [list(p) for p in label_parents], "label_token_offset": base_vocab,
            "cls_token_id": tokenizer.cls_token_id, "sep_token_id": tokenizer.sep_token_id,
            "mask_token_id": tokenizer.mask_token_id, **config_overrides,
        })
        model = cls(config)
        base_embeddings = word_embeddings(base, family).weight.detach()
        with torch.no_grad():
            copy_encoder_weights(model.backbone, base, family, encoder_name_or_path)
            model.get_input_embeddings().weight[:base_vocab] = base_embeddings
            model.cls.transform.load_state_dict(head_state)
            model.cls.bias.zero_()
            model.cls.bias[:base_vocab] = head_bias
            descriptions = label_descriptions or [name.rsplit("/", 1)[-1] for name in label_names]
            model.get_input_embeddings().weight[base_vocab:] = word_piece_rows(
                tokenizer, descriptions, base_embeddings, config.label_init)
        model.tie_weights()
        return model

    # ---------------------------------------------------------------- helpers
    @property
    def max_text_length(self) -> int:
        """Longest ``[CLS] text [SEP]`` that leaves room for the label slots' positions."""
        return self.config.max_position_embeddings - self.num_level_slots

    def _word_rows(self, ids: list[int] | torch.Tensor) -> torch.Tensor:
        table = self.get_input_embeddings().weight
        return table[torch.as_tensor(ids, device=table.device)]

    def _text_inputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                     token_type_ids: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Defaults for the optional inputs, left-padded rows moved to the right layout, and texts cut to
        :attr:`max_text_length` ending in ``[SEP]`` (the documented truncation). Returns ``input_ids``,
        ``attention_mask``, ``token_type_ids``, ``[B, S]`` right-padded."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None or self.label_type_embedding is not None:  # no segments: text is type 0
            token_type_ids = torch.zeros_like(input_ids)
        input_ids, attention_mask, token_type_ids = right_align_padding(input_ids, attention_mask, token_type_ids)
        limit = self.max_text_length
        if input_ids.shape[1] > limit:
            logger.warning_once(f"HBGL: texts longer than {limit} tokens are truncated to leave room for the "
                                "label slots")
            input_ids, attention_mask = input_ids[:, :limit].clone(), attention_mask[:, :limit]
            token_type_ids = token_type_ids[:, :limit]
            input_ids[attention_mask[:, -1].bool(), -1] = self.config.sep_token_id
        return input_ids, attention_mask, token_type_ids

    def _check_labels(self, labels: torch.Tensor) -> None:
        """Raise unless ``labels`` ``[B, L]`` hold only 0 and 1 (a NaN would make the loss NaN or count as a positive).
        One host sync per labelled batch."""
        bad = (labels != 0) & (labels != 1)
        if bad.any():
            row, column = (int(i) for i in bad.nonzero()[0])
            raise ValueError(f"labels must be 0 or 1 (ancestor-closed multi-hot), but row {row} holds "
                             f"{labels[row, column].item()} for label {column} ({self.config.id2label[column]!r}); "
                             "fix the data's labels (a NaN often comes from a missing value)")

    def _check_ancestor_closed(self, labels: torch.Tensor) -> None:
        """Raise when a gold label below the top level has no gold parent: the gold levels must form the path
        1..k (its stop slot and per-level targets follow from them). One host sync per labelled batch."""
        has_parent = any_parent_selected(labels.bool(), self._indices()["parent_links"])  # [B, L]
        orphans = labels.bool() & (self.label_levels > 1)[None, :] & ~has_parent
        if orphans.any():
            row, column = (int(i) for i in orphans.nonzero()[0])
            raise ValueError(f"labels must be closed under ancestors, but row {row} has label {column} "
                             f"({self.config.id2label[column]!r}) without any of its parents; add the ancestors "
                             "(htc_tools' data loading does) or encode the labels with Taxonomy.ancestor_closure")

    def _empty_batch_output(self, decode: bool = False) -> HBGLOutput | HBGLDecodeOutput:
        """Outputs for a batch without rows (BertModel cannot run on one): ``[0, L]`` logits and, for
        :meth:`forward`, a zero loss that ``backward()`` accepts."""
        logits = self.cls.bias.new_zeros(0, self.config.num_labels)
        if decode:
            return HBGLDecodeOutput(probabilities=logits, selected=logits.bool(), logits=logits)
        return HBGLOutput(loss=self.cls.bias[:0].sum(), logits=logits)

    def _encode(self, embeds: torch.Tensor, positions: torch.Tensor, types: torch.Tensor,
                mask: torch.Tensor | None = None, cache: Cache | None = None,
                padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Run the encoder with our ``[B, Q, K]`` "may attend" ``mask``, or with a plain ``[B, S]`` ``padding_mask``
        (the text alone: the encoder's own, faster mask path). ``types`` ``[B, Q]``: 1 on label slots."""
        if self.family != "bert":
            return run_encoder(self.encoder, self.family, embeds, positions, types, mask, self.label_type_embedding,
                               cache, padding_mask, self.config._attn_implementation)
        embeds, types = with_label_type(embeds, types, self.label_type_embedding)  # a BERT without segment 1
        if padding_mask is not None:
            backend = padding_mask
        else:
            backend = to_backend_mask(mask, self.config._attn_implementation, embeds.dtype)
        out = self.bert(inputs_embeds=embeds, position_ids=positions, token_type_ids=types, attention_mask=backend,
                        past_key_values=cache, use_cache=cache is not None)
        return out.last_hidden_state

    def level_multi_hot(self, labels: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` multi-hot -> ``[B, D, L]``: the gold labels of each level (Eq. 5's ``y_h``), whatever
        columns the loss scores."""
        return labels[:, None, :] * self._indices()["level_mask"][None]

    @property
    def column_mask(self) -> torch.Tensor:
        """``[T, 1 + L]`` bool: the columns ([SEP] + labels) each mask slot is scored on (Eq. 8 or "all")."""
        return self._indices()["column_mask"]

    # ---------------------------------------------------------------- training forward (Eq. 5-9)
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> HBGLOutput:
        """Training: teacher-forced local hierarchy, BCE per level. Without ``labels``: :meth:`decode`'s logits.

        Args:
            input_ids, attention_mask, token_type_ids: ``[B, S]`` tokenized ``[CLS] text [SEP]`` (either padding side).
            labels: ``[B, L]`` ancestor-closed multi-hot (taxonomy id order).
        Returns: ``loss`` (scalar) and ``logits`` ``[B, L]`` (each label at its own level's mask slot).
        """
        if labels is None:
            return HBGLOutput(logits=self.decode(input_ids, attention_mask, token_type_ids).logits)
        if labels.shape[-1] != self.config.num_labels:
            raise ValueError(f"labels have {labels.shape[-1]} columns but the model has {self.config.num_labels} "
                             "labels; encode them with the taxonomy the model was built from")
        self._check_labels(labels)
        self._check_ancestor_closed(labels)
        if input_ids.shape[0] == 0:
            return self._empty_batch_output()
        input_ids, attention_mask, token_type_ids = self._text_inputs(input_ids, attention_mask, token_type_ids)
        b, s = input_ids.shape
        t, num_labels = self.num_level_slots, self.config.num_labels
        device = input_ids.device
        labels = labels.to(self.dtype)
        gold = self.level_multi_hot(labels)  # [B, D, L]
        num_levels = (gold.sum(-1) > 0).sum(-1)  # [B]: levels on the path (ancestor-closed -> a prefix)
        slot_index = torch.arange(t, device=device)
        slot_mask = slot_index[None, :] <= num_levels[:, None]  # levels + the stop slot
        is_stop = slot_index[None, :] == num_levels[:, None]

        label_rows = self._word_rows(self.label_columns).detach()  # gold inputs carry no gradient (code)
        sep_row, mask_row = self._word_rows([self.config.sep_token_id, self.config.mask_token_id])
        gold_embeds = torch.zeros(b, t, label_rows.shape[1], dtype=label_rows.dtype, device=device)
        gold_embeds[:, : self.depth] = gold @ label_rows
        gold_embeds = torch.where(is_stop[..., None], sep_row.detach(), gold_embeds)
        if self.training and self.config.target_mask_prob > 0:  # s2s-ft pseudo-masking (reference H12)
            replace = torch.rand(b, t, device=device) < self.config.target_mask_prob
            gold_embeds = torch.where(replace[..., None], mask_row.detach(), gold_embeds)
        text_embeds = self.get_input_embeddings()(input_ids)
        embeds = torch.cat([text_embeds, gold_embeds, mask_row.expand(b, t, -1)], dim=1)

        text_len = attention_mask.sum(-1, keepdim=True)
        slot_pos = text_len + slot_index[None, :]
        positions = torch.cat([torch.arange(s, device=device).expand(b, s), slot_pos, slot_pos], dim=1)
        types = torch.cat([token_type_ids, torch.ones(b, 2 * t, dtype=torch.long, device=device)], dim=1)
        mask = local_hierarchy_mask(attention_mask.bool(), slot_mask)
        hidden = self._encode(embeds, positions, types, mask)[:, s + t :]  # [B, T, H] mask slots
        scores = self.cls(hidden, self.head_columns)  # [B, T, 1 + L]

        targets = torch.zeros(b, t, 1 + num_labels, dtype=scores.dtype, device=device)
        targets[:, : self.depth, 1:] = gold
        targets[..., 0] = is_stop.to(scores.dtype)
        weight = (self.column_mask[None] & slot_mask[..., None]).to(scores.dtype)
        entries = F.binary_cross_entropy_with_logits(scores, targets, weight=weight, reduction="none")
        if self.config.loss_reduction == "example":  # mean per example, then over examples: GA-exact
            loss = (entries.sum((1, 2)) / weight.sum((1, 2))).mean()
        else:  # the authors' code: one mean over every scored entry of the batch
            loss = entries.sum() / weight.sum()
        logits = scores[:, :, 1:].gather(1, (self.label_levels - 1).expand(b, 1, -1)).squeeze(1)
        return HBGLOutput(loss=loss, logits=logits)

    # ---------------------------------------------------------------- level-wise decoding (Eq. 10-12)
    @torch.no_grad()
    def decode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None, threshold: float | None = None,
               hierarchy_consistent: bool | None = None, use_cache: bool = True) -> HBGLDecodeOutput:
        """Predict level by level (``config.decoding``):

        * ``"paper"`` (Eq. 10-12): at level ``h`` a [MASK] slot scores the slot's columns (level ``h``'s labels, or
          every label under ``loss_columns="all"``); a label fires when ``score > logit(threshold)``; the sum of
          the fired labels' embeddings is fed back as slot ``h`` (Eq. 11; ``e_[SEP]``, or zero under
          ``empty_level_input="zero"``, when none fires) and decoding goes on to level ``D``. The prediction is
          every label fired at its own level (Eq. 12).
        * ``"stop_at_empty"``: the same, but a path ends at its first level that fires nothing.
        * ``"authors"`` (reference §1.6): ``D + 1`` steps that score ``[SEP]`` and every label; a path stops at the
          first step whose ``[SEP]`` fires (that step's labels are dropped); the prediction is every label fired
          at an earlier step, at any level.

        The text is encoded once and reused through a KV cache (``use_cache=False`` recomputes the whole
        sequence at each step: same result, slower). Where a step's candidates are exactly one level's labels
        (``"paper"``/``"stop_at_empty"`` with ``loss_columns="level"``), only that level's columns are scored and
        fed back: a decode costs ``O(L)`` label scores in all, not ``O(D * L)``.

        Returns: :class:`HBGLDecodeOutput` with ``[B, L]`` probabilities, selection and logits: each label's score at
        its own level's step (``-1e4`` / probability 0 where that step did not run for the example); under
        ``"authors"`` its highest score over the steps before the one whose [SEP] fired, so that a selected label
        always has a probability above the threshold.
        """
        if input_ids.shape[0] == 0:
            return self._empty_batch_output(decode=True)
        use_cache = use_cache and self.supports_cache  # other families decode uncached (exact, slower)
        config = self.config
        label_threshold = score_thresholds(config, self.label_levels, threshold)[1]  # [L] with level_thresholds
        threshold = config.decode_threshold if threshold is None else threshold
        if not 0 < threshold < 1:
            raise ValueError(f"threshold must be a probability in (0, 1), got {threshold}")
        score_threshold = math.log(threshold) - math.log1p(-threshold)  # sigmoid(s) > t  <=>  s > logit(t)
        consistent = config.hierarchy_consistent if hierarchy_consistent is None else hierarchy_consistent
        authors = config.decoding == "authors"
        input_ids, attention_mask, text_types = self._text_inputs(input_ids, attention_mask, token_type_ids)
        b, s = input_ids.shape
        device = input_ids.device
        num_labels = config.num_labels
        text_mask = attention_mask.bool()
        text_len = attention_mask.sum(-1, keepdim=True)
        text_embeds = self.get_input_embeddings()(input_ids)
        text_pos = torch.arange(s, device=device).expand(b, s)
        label_rows = self._word_rows(self.label_columns)
        sep_row, mask_row = self._word_rows([config.sep_token_id, config.mask_token_id])
        empty_row = sep_row if config.empty_level_input == "sep" else torch.zeros_like(sep_row)  # Eq. 11
        # [steps, L]: the labels each step may fire: its columns (paper), every label (authors)
        candidates = torch.ones_like(self.column_mask[:, 1:]) if authors else self.column_mask[: self.depth, 1:]
        num_steps = candidates.shape[0]
        level_mask, links = self._indices()["level_mask"], self._indices()["parent_links"]
        top_level = self.label_levels == 1
        score_columns = self.head_columns if authors else self.label_columns
        level_ids = self._indices()["level_label_ids"] if not authors and config.loss_columns == "level" else None

        logits = torch.full((b, num_labels), -1e4, dtype=text_embeds.dtype, device=device)
        reached = torch.zeros(b, num_labels, dtype=torch.bool, device=device)  # scored while the path was alive
        selected = torch.zeros(b, num_labels, dtype=torch.bool, device=device)
        active = torch.ones(b, dtype=torch.bool, device=device)
        fed: list[torch.Tensor] = []  # [B, H] per decoded step
        # at most text + (steps - 1) fed slots + one [MASK] slot, written in place (no per-step copy of the text)
        cache = decoding_cache(config.num_hidden_layers, s + num_steps) if use_cache else None
        if use_cache:
            self._encode(text_embeds, text_pos, text_types, cache=cache, padding_mask=attention_mask)
        for k in range(num_steps):  # k slots fed before this step
            if use_cache:
                new = ([fed[-1][:, None]] if k else []) + [mask_row.expand(b, 1, -1)]
                new_pos = text_len + torch.arange(max(k - 1, 0), k + 1, device=device)[None, :]
                if k:
                    cache.crop(-1)  # drop the previous [MASK] slot; its step is now fed
                step_mask = decoding_mask(text_mask, k, num_queries=len(new))
                hidden = self._encode(torch.cat(new, 1), new_pos, torch.ones_like(new_pos), step_mask, cache)
            else:
                slots = torch.stack([*fed, mask_row.expand(b, -1)], dim=1)
                slot_pos = text_len + torch.arange(k + 1, device=device)[None, :]
                embeds = torch.cat([text_embeds, slots], 1)
                positions = torch.cat([text_pos, slot_pos], 1)
                types = torch.cat([text_types, torch.ones_like(slot_pos)], 1)
                hidden = self._encode(embeds, positions, types, decoding_mask(text_mask, k))
            if level_ids is not None:  # step k may fire level k + 1 only: score, select and feed those labels
                fired_sum, empty = self._decode_level_step(hidden[:, -1], level_ids[k], label_rows, label_threshold,
                                                           active, logits, reached, selected,
                                                           links if consistent else None)
                if k + 1 < num_steps:
                    fed.append(torch.where(empty[:, None], empty_row, fired_sum))  # Eq. 11
                if config.decoding == "stop_at_empty":
                    active = active & ~empty
                continue
            scores = self.cls(hidden[:, -1], score_columns)  # [B, (1 +) L]
            if authors:
                stops, scores = scores[:, 0] > score_threshold, scores[:, 1:]
                alive = active & ~stops  # the step whose [SEP] fires adds nothing
            else:
                alive = active
            fires = (scores > label_threshold) & candidates[k] & alive[:, None]
            if consistent:
                has_parent = any_parent_selected(selected, links)
                fires &= has_parent | top_level[None, :]
            if authors:  # a label may fire at any step: keep its highest score over the steps that ran
                logits = torch.where(alive[:, None], torch.maximum(logits, scores), logits)
                reached |= alive[:, None]
                selected |= fires
            else:  # step k scores level k + 1
                own_level = level_mask[k]
                now = own_level[None, :] & alive[:, None]
                logits = torch.where(now, scores, logits)
                reached |= now
                selected |= fires & own_level[None, :]  # Eq. 12: at its own level
            empty = ~fires.any(-1)
            if k + 1 < num_steps:
                fed.append(torch.where(empty[:, None], empty_row, fires.to(label_rows.dtype) @ label_rows))  # Eq. 11
            if config.decoding == "stop_at_empty":
                active = active & ~empty
            elif authors:
                active = alive
        probabilities = torch.where(reached, torch.sigmoid(logits), torch.zeros_like(logits))
        return HBGLDecodeOutput(probabilities=probabilities, selected=selected, logits=logits)

    def _decode_level_step(self, hidden: torch.Tensor, ids: torch.Tensor, label_rows: torch.Tensor,
                           label_threshold: float | torch.Tensor, alive: torch.Tensor, logits: torch.Tensor,
                           reached: torch.Tensor, selected: torch.Tensor, links: torch.Tensor | None
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """One ``"paper"`` decoding step on one level's labels only (Eq. 10-11).

        ``hidden`` ``[B, H]`` the [MASK] slot; ``ids`` ``[L_h]`` the level's label ids; ``label_rows`` ``[L, H]``;
        ``alive`` ``[B]``; ``logits``/``reached``/``selected`` ``[B, L]`` are updated in place on the ``ids``
        columns; ``links``: real-parent links when decoding hierarchy-consistently, else None.
        Returns the sum of the fired labels' embeddings ``[B, H]`` and whether none fired ``[B]``.
        """
        scores = self.cls(hidden, self.label_columns[ids])  # [B, L_h]
        threshold = label_threshold[ids] if isinstance(label_threshold, torch.Tensor) else label_threshold
        fires = (scores > threshold) & alive[:, None]
        if links is not None:  # a label fires only under a selected parent (top level: the root)
            under_parent = any_parent_selected(selected, links)[:, ids] | (self.label_levels[ids] == 1)[None, :]
            fires &= under_parent
        logits[:, ids] = torch.where(alive[:, None], scores, logits[:, ids])
        reached[:, ids] |= alive[:, None]
        selected[:, ids] |= fires
        return fires.to(label_rows.dtype) @ label_rows[ids], ~fires.any(-1)

    # ---------------------------------------------------------------- global stage (Alg. 1)
    def pretrain_label_embeddings(self, num_steps: int, learning_rate: float = 1e-3, batch_size: int = 32,
                                  seed: int = 0) -> list[float]:
        """Global hierarchy-aware label embeddings (paper §4.1, Alg. 1): the encoder frozen (it still runs in train
        mode, as the authors' code), only the label rows trained by masked label prediction over the label graph,
        with AdamW (weight decay 0, eps 1e-8), a constant learning rate and no gradient clipping (reference §1.4).
        Returns the loss per step.

        The same rows, masks and optimiser as the Trainer stage (``htc_tools.trainer.run_label_pretraining`` with
        ``args.seed == seed``). The torch RNG state is restored afterwards (as the authors' code), so fine-tuning
        randomness does not depend on this stage.

        On CPU, start the process with ``ONEDNN_PRIMITIVE_CACHE_CAPACITY=16 LRU_CACHE_CAPACITY=16``: every step has
        other shapes, and oneDNN's default kernel caches grew a 100-step stage to GBs of memory (warned here).
        """
        cache_settings = (("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY"),  # oneDNN reads both
                          ("LRU_CACHE_CAPACITY",))
        if self.device.type == "cpu" and not all(any(n in os.environ for n in names) for names in cache_settings):
            logger.warning("label pre-training on CPU with oneDNN's kernel caches unbounded: every step has other "
                           "shapes and the cached kernels grow the process by GBs over 100 steps; start it with "
                           "ONEDNN_PRIMITIVE_CACHE_CAPACITY=16 LRU_CACHE_CAPACITY=16")
        pretrainer = LabelGraphPretrainer(self)
        optimizer = torch.optim.AdamW([pretrainer.label_embeddings], lr=learning_rate, weight_decay=0.0, eps=1e-8)
        rows = stage_rows(num_steps, batch_size, seed)
        losses = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            pretrainer.train()
            for step in range(num_steps):
                batch = slice(step * batch_size, (step + 1) * batch_size)
                progress, mask_seed = torch.tensor(rows["progress"][batch]), torch.tensor(rows["mask_seed"][batch])
                loss = pretrainer(progress, mask_seed)["loss"]
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                losses.append(loss.item())
        pretrainer.commit()
        return losses
