"""HPTForHierarchicalClassification: hierarchy-aware prompt tuning (Wang et al., EMNLP 2022).

The encoder reads ``[CLS] text [SEP] V_1 [PRED] ... V_D [PRED] [SEP]`` (template.py). The virtual depth
tokens ``V_d`` enter BERT after a GAT over label words + virtual nodes (graph.py, Eq. 4-5). At the ``[PRED]``
of depth ``d`` the MLM head scores the label words of depth ``d`` (the verbalizer):
``score(d, l) = <transform(h_[PRED]_d), e_l> + b_mlm[l] + b_l``, trained with ZMLCE (losses.py, Eq. 9-10)
plus an MLM loss on 15 % of the text (Eq. 11). A label is predicted when its score is > 0.

Vocabulary layout: ``[base vocab | L label words | D virtual tokens | [PRED]]`` in one word-embedding table,
tied to the MLM decoder; the input side replaces ``V_d`` by its GAT output, the output side uses the raw
label rows (as the authors' code).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig, BertModel, BertPreTrainedModel
from transformers import initialization as init
from transformers.models.bert.modeling_bert import BertPredictionHeadTransform
from transformers.utils import ModelOutput

from .configuration_hpt import HPTConfig
from .encoder_backbone import (
    FAMILIES,
    PredictionTransform,
    build_backbone,
    copy_encoder_weights,
    family_of,
    load_checkpoint,
    mirrored_settings,
    sync_attention,
    word_embeddings,
)
from .graph import GraphAttentionLayer, HierarchyInjection, hierarchy_edges
from .hierarchical_pipeline import pipeline_registration
from .hierarchy_index import any_parent_selected, parent_links, word_piece_rows
from .losses import zmlce
from .template import build_prompt_inputs, right_align_padding, template_token_ids
from .thresholds import score_thresholds

logger = logging.getLogger(__name__)
BERT_CONFIG_KEYS = frozenset(BertConfig().to_dict()) - {"architectures", "id2label", "label2id", "model_type",
                                                     "transformers_version", "vocab_size"}


@dataclass
class HPTOutput(ModelOutput):
    """``loss`` (ZMLCE + weighted MLM when training), ``logits`` ``[B, L]``: each label's score at its depth."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    classification_loss: torch.Tensor | None = None
    mlm_loss: torch.Tensor | None = None


@dataclass
class HPTDecodeOutput(ModelOutput):
    """``probabilities`` ``[B, L]`` (sigmoid of the scores), ``selected`` ``[B, L]`` bool, ``logits`` ``[B, L]``."""

    probabilities: torch.Tensor | None = None
    selected: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class HPTPromptHead(nn.Module):
    """MLM transform + decoder tied to the word embeddings + bias (the pretrained MLM head where it exists)."""

    def __init__(self, config: HPTConfig) -> None:
        super().__init__()
        legacy = family_of(config) == "bert"
        self.transform = BertPredictionHeadTransform(config) if legacy else PredictionTransform(config)
        width = config.hidden_size if legacy else (config.embedding_size or config.hidden_size)
        self.decoder = nn.Linear(width, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: torch.Tensor, rows: slice | None = None) -> torch.Tensor:
        """``[..., H]`` -> ``[..., V]`` scores over the vocabulary rows ``rows`` (all by default)."""
        rows = rows or slice(None)
        return F.linear(self.transform(hidden), self.decoder.weight[rows], self.bias[rows])


class HPTForHierarchicalClassification(BertPreTrainedModel):
    config_class = HPTConfig
    _tied_weights_keys = {"cls.decoder.weight": "bert.embeddings.word_embeddings.weight"}
    _supports_flash_attn = False
    _supports_flex_attn = False
    accepts_loss_kwargs = False  # the loss is a mean: the Trainer must scale it for gradient accumulation

    def __init__(self, config: HPTConfig) -> None:
        super().__init__(config)
        self.family = family_of(config)
        self.depth = config.depth
        self.template_length = 2 * self.depth + 1
        if self.template_length + 3 > config.max_position_embeddings:
            raise ValueError(f"the taxonomy has {self.depth} levels: the {self.template_length}-token template "
                             f"leaves no room for text in {config.max_position_embeddings} positions")
        expected_vocab = config.label_token_offset + config.num_labels + self.depth + 1
        if config.vocab_size != expected_vocab:
            raise ValueError(f"vocab_size must be label_token_offset + labels + depth + 1 = {expected_vocab} "
                             f"([PRED] last), got {config.vocab_size}: id2label and label_parents do not match the "
                             "model's prompt rows; labels cannot be added to or removed from a trained model's "
                             "config.json, train a model on the new taxonomy instead")
        # the stock text-classification pipeline needs this auto_map entry (hf-notes §2.2); AutoModel's is
        # added on save by register_for_auto_class
        sequence_classification = {"AutoModelForSequenceClassification": f"modeling_hpt.{type(self).__name__}"}
        config.auto_map = {**(getattr(config, "auto_map", None) or {}), **sequence_classification}
        # the hierarchical pipeline travels with every save (Trainer checkpoints included): its file is copied as a
        # relative import of this module, and config.custom_pipelines names it for pipeline(trust_remote_code)
        config.custom_pipelines = {**(getattr(config, "custom_pipelines", None) or {}), **pipeline_registration()}
        if config.problem_type is None:  # the stock pipeline then applies a sigmoid
            config.problem_type = "multi_label_classification"
        if self.family == "bert":  # today's layout: a flat BERT config, the encoder under ``bert``
            self.bert = BertModel(config, add_pooling_layer=False)
        else:  # any other family: ``encoder_config`` built through the Auto classes, held under ``encoder``
            self.encoder = build_backbone(config)
            self._tied_weights_keys = {"cls.decoder.weight": f"encoder.{FAMILIES[self.family][0]}.weight"}
        self.cls = HPTPromptHead(config)
        dropout = config.attention_probs_dropout_prob if config.graph_dropout is None else config.graph_dropout
        width = self.get_input_embeddings().weight.shape[1]  # the graph runs on word-embedding rows
        self.graph = HierarchyInjection(width, config.graph_layers, dropout,
                                        layer_norm=config.graph_residual == "layer_norm")
        self.label_bias = nn.Parameter(torch.zeros(config.num_labels))  # verbalizer bias b_l (after Eq. 10)
        self._index_cache: dict[torch.device, dict[str, torch.Tensor]] = {}
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, GraphAttentionLayer):  # GATConv's glorot init (children were set first)
            init.xavier_uniform_(module.linear.weight)
            bound = math.sqrt(6.0 / (1 + module.attention_source.numel()))
            init.uniform_(module.attention_source, -bound, bound)
            init.uniform_(module.attention_target, -bound, bound)
            init.zeros_(module.bias)
        elif isinstance(module, HPTForHierarchicalClassification):  # the code's U(+-1/sqrt(H)) "multiclass_bias"
            bound = 1 / math.sqrt(self.config.hidden_size)
            init.uniform_(module.label_bias, -bound, bound)

    def _indices(self) -> dict[str, torch.Tensor]:
        """Tensors derived from the config once per device (not buffers, which a meta-device load would
        leave uninitialised)."""
        device = self.get_input_embeddings().weight.device
        if device not in self._index_cache:
            self._index_cache[device] = self._build_indices(device)
        return self._index_cache[device]

    @torch.inference_mode(False)  # normal tensors even when first called under inference_mode (pipelines)
    def _build_indices(self, device: torch.device) -> dict[str, torch.Tensor]:
        config = self.config
        levels = torch.tensor(config.label_levels, dtype=torch.long, device=device)
        return {
            "label_levels": levels,
            "depth_groups": levels[None, :] == torch.arange(1, self.depth + 1, device=device)[:, None],
            "adjacency": hierarchy_edges(config.label_parents, config.label_levels,  # [2, E] edge list
                                         directed=config.graph_edges == "parent_to_child").to(device),
            "template": torch.tensor(template_token_ids(config.virtual_token_ids, config.pred_token_id,
                                                        config.sep_token_id), device=device),
            "parent_links": parent_links(config.label_parents, root=None).to(device),  # [2, P] (child, parent)
        }

    @property
    def label_levels(self) -> torch.Tensor:
        """``[L]`` 1-based depth per label."""
        return self._indices()["label_levels"]

    @property
    def max_text_length(self) -> int:
        """Longest ``[CLS] text [SEP]`` that fits before the template."""
        return self.config.max_position_embeddings - self.template_length

    # ---------------------------------------------------------------- construction
    @property
    def backbone(self) -> nn.Module:
        """The encoder: a ``BertModel`` under ``bert`` or another family's base model under ``encoder``."""
        return self.bert if self.family == "bert" else self.encoder

    def get_input_embeddings(self) -> nn.Embedding:
        return word_embeddings(self.backbone, self.family)

    @classmethod
    def from_encoder(cls, encoder_name_or_path: str, label_names: list[str], label_parents: list[list[int]],
                     tokenizer=None, label_descriptions: list[str] | None = None,
                     **config_overrides: object) -> HPTForHierarchicalClassification:
        """Build HPT on a pretrained encoder of a supported family (encoder_backbone.FAMILIES: BERT, RoBERTa,
        XLM-R, ELECTRA, DistilBERT, DeBERTa-v2/v3, ModernBERT), loaded with ``AutoModelForMaskedLM``: its MLM head
        where the checkpoint has one, a fresh transform otherwise (e.g. all-MiniLM-L6-v2). An unsupported family
        or a checkpoint without encoder weights raises an error naming the family.

        Label words are initialised from ``label_descriptions`` (default: the last ``/`` segment of each name)
        as the mean of their word-piece embeddings (``label_init="mean_with_special"``: of ``[CLS] name
        [SEP]``, as the authors' code), the virtual tokens from N(0, initializer_range), ``[PRED]`` from
        ``[MASK]`` (reference §2.4).
        """
        from transformers import AutoTokenizer

        tokenizer = tokenizer or AutoTokenizer.from_pretrained(encoder_name_or_path)
        family, base, head_state, head_bias = load_checkpoint(encoder_name_or_path)
        base_vocab = base.config.vocab_size
        parents = [list(p) for p in label_parents]
        probe = HPTConfig(id2label=dict(enumerate(label_names)), label_parents=parents)
        extra_rows = len(label_names) + probe.depth + 1
        if family == "bert":
            encoder_settings = {k: v for k, v in base.config.to_dict().items() if k in BERT_CONFIG_KEYS}
        else:
            encoder_settings = mirrored_settings(family, base.config, extra_rows)
        config = HPTConfig(**{
            **encoder_settings, "vocab_size": base_vocab + extra_rows,
            "id2label": dict(enumerate(label_names)), "label_parents": parents, "label_token_offset": base_vocab,
            "cls_token_id": tokenizer.cls_token_id, "sep_token_id": tokenizer.sep_token_id,
            "mask_token_id": tokenizer.mask_token_id, **config_overrides,
        })
        model = cls(config)
        word_rows = word_embeddings(base, family).weight.detach()
        with torch.no_grad():
            copy_encoder_weights(model.backbone, base, family, encoder_name_or_path)
            table = model.get_input_embeddings().weight
            table[:base_vocab] = word_rows
            model.cls.transform.load_state_dict(head_state)
            model.cls.bias.zero_()
            model.cls.bias[:base_vocab] = head_bias
            names = label_descriptions or [name.rsplit("/", 1)[-1] for name in label_names]
            with_special = config.label_init == "mean_with_special"
            table[base_vocab : base_vocab + len(names)] = word_piece_rows(tokenizer, names, word_rows, "mean",
                                                                          with_special)
            table[config.virtual_token_ids] = torch.randn(config.depth, table.shape[1]) * config.initializer_range
            table[config.pred_token_id] = word_rows[tokenizer.mask_token_id]
        model.tie_weights()
        return model

    # ---------------------------------------------------------------- encoding
    def _prompt_embeddings(self, prompt_ids: torch.Tensor) -> torch.Tensor:
        """``[B, S']`` ids -> ``[B, S', H]`` word embeddings with each ``V_d`` replaced by its GAT output."""
        config = self.config
        table = self.get_input_embeddings().weight
        offset, num_labels = config.label_token_offset, config.num_labels
        nodes = table[offset : offset + num_labels + self.depth]  # label words then virtual tokens
        virtual = self.graph(nodes, self._indices()["adjacency"])[num_labels:]  # [D, H]: t'_d (Eq. 5)
        embeds = F.embedding(prompt_ids, table)
        virtual_index = prompt_ids - (offset + num_labels)
        is_virtual = (virtual_index >= 0) & (virtual_index < self.depth)
        # F.embedding, not virtual[index]: the backward of indexing adds the rows' gradients with parallel CPU
        # atomics (a different sum from run to run); the embedding's backward sums in a fixed order
        virtual_embeds = F.embedding(virtual_index.clamp(0, self.depth - 1), virtual)
        return torch.where(is_virtual[..., None], virtual_embeds, embeds)

    def _mlm_corruption(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                        text_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """BERT's 80/10/10 corruption of ``mlm_probability`` of the eligible tokens (§4.2).
        Returns the corrupted ids and ``[B, S']`` bool, the positions the MLM loss is computed on."""
        config = self.config
        special = torch.tensor([config.cls_token_id, config.sep_token_id, config.pad_token_id or 0],
                               device=prompt_ids.device)
        if config.mlm_eligible == "text":  # the text's words only (paper)
            eligible = text_mask & ~torch.isin(prompt_ids, special)
        else:  # every ordinary token, [CLS] and the template's [SEP] included (authors' code)
            eligible = prompt_mask.bool() & (prompt_ids < config.label_token_offset)
        u = torch.rand(prompt_ids.shape, device=prompt_ids.device)
        chosen = eligible & (u < config.mlm_probability)
        share = u / config.mlm_probability  # uniform in [0, 1) on the chosen positions
        first_word = int(max(config.cls_token_id, config.sep_token_id, config.mask_token_id)) + 1
        if self.family != "bert":  # special ids anywhere (RoBERTa's [MASK] is its last word): the whole base
            first_word = 0  # vocabulary, as transformers' DataCollatorForLanguageModeling draws
        random_ids = torch.randint_like(prompt_ids, first_word, config.label_token_offset)
        corrupted = torch.where(chosen & (share < 0.8), config.mask_token_id, prompt_ids)
        corrupted = torch.where(chosen & (share >= 0.9), random_ids, corrupted)
        return corrupted, chosen

    def _check_labels(self, labels: torch.Tensor) -> None:
        """Raise unless ``labels`` ``[B, L]`` hold only 0 and 1 (a NaN would make the loss NaN or count as a positive).
        One host sync per labelled batch."""
        bad = (labels != 0) & (labels != 1)
        if bad.any():
            row, column = (int(i) for i in bad.nonzero()[0])
            raise ValueError(f"labels must be 0 or 1 (ancestor-closed multi-hot), but row {row} holds "
                             f"{labels[row, column].item()} for label {column} ({self.config.id2label[column]!r}); "
                             "fix the data's labels (a NaN often comes from a missing value)")

    def _empty_batch_output(self, with_loss: bool) -> HPTOutput:
        """Outputs for a batch without rows (BertModel cannot run on one): ``[0, L]`` logits and, with labels, a
        zero loss that ``backward()`` accepts."""
        loss = self.label_bias[:0].sum() if with_loss else None
        return HPTOutput(loss=loss, logits=self.label_bias.new_zeros(0, self.config.num_labels),
                         classification_loss=loss)

    # ---------------------------------------------------------------- forward (Eq. 9-11)
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> HPTOutput:
        """Score every label at its depth's ``[PRED]``; with ``labels``, ZMLCE (+ MLM loss in training).

        Args:
            input_ids, attention_mask: ``[B, S]`` tokenized ``[CLS] text [SEP]`` (either padding side).
            token_type_ids: accepted for tokenizer compatibility and ignored (the prompt is one segment).
            labels: ``[B, L]`` ancestor-closed multi-hot (taxonomy id order).
        Returns: ``loss`` (scalar, with ``labels``) and ``logits`` ``[B, L]``.
        """
        config = self.config
        if labels is not None and labels.shape[-1] != config.num_labels:
            raise ValueError(f"labels have {labels.shape[-1]} columns but the model has {config.num_labels} "
                             "labels; encode them with the taxonomy the model was built from")
        if labels is not None:
            self._check_labels(labels)
        if input_ids.shape[0] == 0:
            return self._empty_batch_output(with_loss=labels is not None)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        input_ids, attention_mask, _ = right_align_padding(input_ids, attention_mask)
        if input_ids.shape[1] > self.max_text_length + (0 if config.template_text_sep else 1):
            logger.warning_once(f"HPT: texts longer than {self.max_text_length} tokens are truncated to leave "
                                "room for the prompt template")
        prompt_ids, prompt_mask, pred_positions, text_mask = build_prompt_inputs(
            input_ids, attention_mask, self._indices()["template"], config.max_position_embeddings,
            config.sep_token_id, config.pad_token_id or 0, keep_text_sep=config.template_text_sep)
        model_ids, mlm_positions = prompt_ids, None
        if self.training and labels is not None and config.mlm_loss_weight > 0:
            model_ids, mlm_positions = self._mlm_corruption(prompt_ids, prompt_mask, text_mask)
        if self.family == "bert":
            hidden = self.bert(inputs_embeds=self._prompt_embeddings(model_ids), attention_mask=prompt_mask,
                               token_type_ids=torch.zeros_like(model_ids)).last_hidden_state  # [B, S', H]
        else:  # one segment, the family's own positions and padding mask
            sync_attention(self.encoder, self.family, config._attn_implementation)
            hidden = self.encoder(inputs_embeds=self._prompt_embeddings(model_ids),
                                  attention_mask=prompt_mask).last_hidden_state  # [B, S', H]
        logits = self._label_scores(hidden, pred_positions)
        if labels is None:
            return HPTOutput(logits=logits)
        groups = self._indices()["depth_groups"]
        if config.zmlce_mode == "per_example_global":  # the authors' code: one ZMLCE over all L labels
            groups = groups.any(0, keepdim=True)
        classification_loss = zmlce(logits, labels, groups)
        loss, mlm_loss = classification_loss, None
        if mlm_positions is not None and mlm_positions.any():  # Eq. 11, over the extended vocabulary (code)
            mlm_logits = self.cls(hidden[mlm_positions])
            mlm_loss = F.cross_entropy(mlm_logits.float(), prompt_ids[mlm_positions])
            loss = loss + config.mlm_loss_weight * mlm_loss
        elif self.training and config.verbalizer_bias == "label":
            # without an MLM term the decoder bias takes no part in the loss: a zero term keeps it in the graph, so
            # DDP without find_unused_parameters does not fail (mlm_loss_weight=0, or no position drawn)
            loss = loss + 0.0 * self.cls.bias.sum()
        return HPTOutput(loss=loss, logits=logits, classification_loss=classification_loss, mlm_loss=mlm_loss)

    def _label_scores(self, hidden: torch.Tensor, pred_positions: torch.Tensor) -> torch.Tensor:
        """The verbalizer: ``[B, S', H]`` hidden states -> ``[B, L]``, label ``l`` scored at the ``[PRED]`` of its
        depth with the raw label rows (reference §2.6): ``<transform(h), e_l> + b_l`` (Eq. 10), plus the MLM
        decoder's bias ``b_mlm[l]`` under ``verbalizer_bias="mlm_plus_label"`` (the authors' code)."""
        offset, num_labels = self.config.label_token_offset, self.config.num_labels
        pred_hidden = hidden.gather(1, pred_positions[..., None].expand(-1, -1, hidden.shape[-1]))  # [B, D, H]
        rows = slice(offset, offset + num_labels)
        if self.config.verbalizer_bias == "mlm_plus_label":
            per_depth = self.cls(pred_hidden, rows) + self.label_bias  # [B, D, L]
        else:
            per_depth = F.linear(self.cls.transform(pred_hidden), self.cls.decoder.weight[rows], self.label_bias)
        depth_index = (self.label_levels - 1).expand(hidden.shape[0], 1, -1)
        return per_depth.gather(1, depth_index).squeeze(1)

    # ---------------------------------------------------------------- prediction (reference §2.7)
    @torch.no_grad()
    def decode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None, threshold: float | None = None,
               hierarchy_consistent: bool | None = None) -> HPTDecodeOutput:
        """One forward; a label is selected when its score ``> logit(threshold)`` (0.5: ``score > 0``, §4.2), compared
        on the score, not on a rounded probability. With ``hierarchy_consistent`` a label below the top level also
        needs a selected parent (depth by depth).

        Returns: :class:`HPTDecodeOutput` with ``[B, L]`` probabilities, selection and logits.
        """
        label_threshold = score_thresholds(self.config, self.label_levels, threshold)[1]  # [L] with level_thresholds
        threshold = self.config.decode_threshold if threshold is None else threshold
        if not 0 < threshold < 1:
            raise ValueError(f"threshold must be a probability in (0, 1), got {threshold}")
        consistent = self.config.hierarchy_consistent if hierarchy_consistent is None else hierarchy_consistent
        logits = self.forward(input_ids, attention_mask, token_type_ids).logits
        probabilities = torch.sigmoid(logits)
        selected = logits > label_threshold
        if consistent:
            links = self._indices()["parent_links"]
            for level in range(2, self.depth + 1):
                has_parent = any_parent_selected(selected, links)
                selected &= (self.label_levels != level)[None, :] | has_parent
        return HPTDecodeOutput(probabilities=probabilities, selected=selected, logits=logits)
