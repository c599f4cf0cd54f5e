"""The embeddings + logistic-regression baseline as a model: a frozen sentence encoder, its pooling (and
normalisation), and one linear head whose rows are per-label logistic regressions fitted with scikit-learn
(``htc_tools.embed_lr_training``). Saved like the other models (safetensors + this code), it serves through
``decode()``, the ``hierarchical-text-classification`` pipeline and the stock text-classification pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import ModelOutput

from .configuration_embed_lr import EmbedLRConfig
from .hierarchical_pipeline import pipeline_registration
from .thresholds import score_thresholds


@dataclass
class EmbedLRDecodeOutput(ModelOutput):
    """``probabilities``, ``selected`` (bool) and ``logits``, each ``[B, L]``."""

    probabilities: torch.Tensor | None = None
    selected: torch.Tensor | None = None
    logits: torch.Tensor | None = None


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str) -> torch.Tensor:
    """sentence-transformers' Pooling of ``[B, S, H]`` hidden states over the real tokens -> ``[B, H]``."""
    mask = attention_mask[..., None].to(hidden.dtype)
    if mode == "cls":
        return hidden[:, 0]
    if mode == "max":
        return hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).amax(1)
    summed, count = (hidden * mask).sum(1), mask.sum(1).clamp(min=1e-9)
    return summed / (count.sqrt() if mode == "mean_sqrt_len" else count)


class EmbedLRForHierarchicalClassification(PreTrainedModel):
    """``logits = W · pool(encoder(text)) + b``, ``[B, L]``: row ``l`` of ``W``/``b`` is label ``l``'s logistic
    regression. ``forward`` returns the BCE loss (for evaluation) and the logits; ``decode`` selects labels."""

    config_class = EmbedLRConfig
    base_model_prefix = "encoder"
    _supports_sdpa = True
    accepts_loss_kwargs = False

    def __init__(self, config: EmbedLRConfig) -> None:
        super().__init__(config)
        self.encoder = AutoModel.from_config(config.encoder_config)
        self.classifier = nn.Linear(config.encoder_config.hidden_size, config.num_labels)
        config.auto_map = {**(getattr(config, "auto_map", None) or {}),
                           "AutoModelForSequenceClassification": f"modeling_embed_lr.{type(self).__name__}"}
        # the hierarchical pipeline travels with every save (as HBGL's and HPT's)
        config.custom_pipelines = {**(getattr(config, "custom_pipelines", None) or {}), **pipeline_registration()}
        self.post_init()

    @property
    def label_levels(self) -> torch.Tensor:
        """1-based level per label, ``[L]`` (built from the config where used: no buffer to restore on loading)."""
        return torch.tensor(self.config.label_levels or [1] * self.config.num_labels,
                            device=self.classifier.weight.device)

    @classmethod
    def from_encoder(cls, encoder_name_or_path: str, label_names: list[str], label_parents: list[list[int]],
                     pooling: str = "cls", normalize: bool = False, **config_kwargs: object
                     ) -> EmbedLRForHierarchicalClassification:
        """A model on a pretrained encoder with a zero head (to be fitted)."""
        encoder = AutoModel.from_pretrained(encoder_name_or_path)
        config = EmbedLRConfig(encoder_config=encoder.config.to_dict(), pooling=pooling, normalize=normalize,
                               id2label=dict(enumerate(label_names)),
                               label2id={n: i for i, n in enumerate(label_names)}, label_parents=label_parents,
                               problem_type="multi_label_classification", **config_kwargs)
        model = cls(config)
        model.encoder = encoder
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.zero_()
        return model.eval()

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
              token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Sentence embeddings ``[B, H]`` (pooled, normalised when ``config.normalize``)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**inputs).last_hidden_state
        pooled = pool(hidden, attention_mask, self.config.pooling)
        return F.normalize(pooled, dim=-1) if self.config.normalize else pooled

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                **kwargs: object) -> SequenceClassifierOutput:
        logits = self.classifier(self.embed(input_ids, attention_mask, token_type_ids))
        loss = None
        if labels is not None:
            loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float())
        return SequenceClassifierOutput(loss=loss, logits=logits)

    @torch.no_grad()
    def decode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None, threshold: float | None = None,
               hierarchy_consistent: bool | None = None) -> EmbedLRDecodeOutput:
        """A label is selected when its logit ``> logit(threshold)`` (per level with ``config.level_thresholds``);
        with ``hierarchy_consistent`` a label below the top level also needs a selected parent (top-down)."""
        _, label_threshold = score_thresholds(self.config, self.label_levels, threshold)
        consistent = self.config.hierarchy_consistent if hierarchy_consistent is None else hierarchy_consistent
        logits = self.forward(input_ids, attention_mask, token_type_ids).logits
        selected = logits > label_threshold
        if consistent:
            for level in range(2, self.config.depth + 1):
                for label in torch.nonzero(self.label_levels == level).flatten().tolist():
                    parents = self.config.label_parents[label]
                    selected[:, label] &= selected[:, parents].any(-1)
        return EmbedLRDecodeOutput(probabilities=torch.sigmoid(logits), selected=selected, logits=logits)
