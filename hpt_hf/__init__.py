"""HPT (Wang et al., EMNLP 2022) as a HuggingFace model: hierarchy-aware prompt tuning."""

from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from .configuration_hpt import HPTConfig
from .hierarchical_pipeline import HierarchicalTextClassificationPipeline
from .modeling_hpt import HPTDecodeOutput, HPTForHierarchicalClassification, HPTOutput

HPTConfig.register_for_auto_class()
HPTForHierarchicalClassification.register_for_auto_class("AutoModel")
AutoConfig.register("hpt", HPTConfig, exist_ok=True)
AutoModel.register(HPTConfig, HPTForHierarchicalClassification, exist_ok=True)
AutoModelForSequenceClassification.register(HPTConfig, HPTForHierarchicalClassification, exist_ok=True)

__all__ = [
    "HPTConfig",
    "HPTDecodeOutput",
    "HPTForHierarchicalClassification",
    "HPTOutput",
    "HierarchicalTextClassificationPipeline",
]
