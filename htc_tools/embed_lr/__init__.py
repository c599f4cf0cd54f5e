"""Frozen sentence embeddings + one logistic regression per label, as a saved/served model
(``--model_type embed_lr``; fitting: :mod:`htc_tools.embed_lr_training`)."""

from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from .configuration_embed_lr import EmbedLRConfig
from .modeling_embed_lr import EmbedLRForHierarchicalClassification

AutoConfig.register("embed_lr", EmbedLRConfig, exist_ok=True)
AutoModel.register(EmbedLRConfig, EmbedLRForHierarchicalClassification, exist_ok=True)
AutoModelForSequenceClassification.register(EmbedLRConfig, EmbedLRForHierarchicalClassification, exist_ok=True)
EmbedLRConfig.register_for_auto_class()
EmbedLRForHierarchicalClassification.register_for_auto_class("AutoModel")

__all__ = ["EmbedLRConfig", "EmbedLRForHierarchicalClassification"]
