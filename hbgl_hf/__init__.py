"""HBGL (Jiang et al., EMNLP 2022) as a HuggingFace model: global + local label hierarchies with BERT."""

from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from .configuration_hbgl import HBGLConfig
from .hierarchical_pipeline import HierarchicalTextClassificationPipeline
from .label_pretraining import LabelGraphPretrainer
from .modeling_hbgl import HBGLDecodeOutput, HBGLForHierarchicalClassification, HBGLOutput

HBGLConfig.register_for_auto_class()
HBGLForHierarchicalClassification.register_for_auto_class("AutoModel")
AutoConfig.register("hbgl", HBGLConfig, exist_ok=True)
AutoModel.register(HBGLConfig, HBGLForHierarchicalClassification, exist_ok=True)
AutoModelForSequenceClassification.register(HBGLConfig, HBGLForHierarchicalClassification, exist_ok=True)

__all__ = [
    "HBGLConfig",
    "HBGLDecodeOutput",
    "HBGLForHierarchicalClassification",
    "HBGLOutput",
    "HierarchicalTextClassificationPipeline",
    "LabelGraphPretrainer",
]
