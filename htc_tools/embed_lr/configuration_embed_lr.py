"""EmbedLRConfig: a frozen sentence encoder's config plus the pooling, the label hierarchy and the decision
thresholds of the embeddings + logistic-regression baseline."""

from __future__ import annotations

from dataclasses import field

from transformers import AutoConfig, PretrainedConfig
from transformers.configuration_utils import SubConfigSpec

POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len")


class EmbedLRConfig(PretrainedConfig):
    """Args (beyond :class:`~transformers.PretrainedConfig`):
        encoder_config: the encoder's config (any ``AutoModel`` architecture).
        pooling: ``"mean"`` | ``"cls"`` | ``"max"`` | ``"mean_sqrt_len"`` over the last hidden states (as the
            checkpoint's sentence-transformers ``1_Pooling/config.json`` says; ``"cls"`` without one).
        normalize: L2-normalise the pooled embedding (the checkpoint has a ``Normalize`` module).
        id2label, label_parents: label names and per label its parent ids, in taxonomy (level-major) order.
        decode_threshold: probability threshold of every label; ``level_thresholds``: one per level (top first),
            used instead when set. hierarchy_consistent: select a label only below a selected parent.
        regularization_c: the logistic regressions' inverse regularisation strength ``C`` (recorded).
    """

    model_type = "embed_lr"
    sub_configs_defaults = {"encoder_config": SubConfigSpec(config_class=AutoConfig, model_type="bert")}

    encoder_config: PretrainedConfig | dict | None = None
    pooling: str = "mean"
    normalize: bool = False
    label_parents: list = field(default_factory=list)
    decode_threshold: float = 0.5
    level_thresholds: list | None = None
    hierarchy_consistent: bool = False
    regularization_c: float = 1.0

    def __post_init__(self, **kwargs: object) -> None:
        super().__post_init__(**kwargs)
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"EmbedLRConfig.pooling must be one of {POOLING_MODES}, got {self.pooling!r}")
        if self.label_parents and len(self.label_parents) != len(self.id2label):
            raise ValueError(f"label_parents has {len(self.label_parents)} entries but id2label has "
                             f"{len(self.id2label)} labels")
        for i, parents in enumerate(self.label_parents):
            if any(not isinstance(p, int) or not 0 <= p < i for p in parents):
                raise ValueError(f"label {i} has parents {parents!r}: parent ids must be integers below the label's "
                                 "own id (ids are level-major, parents first)")

    @property
    def label_levels(self) -> list[int]:
        """1-based level per label: one below its deepest parent."""
        levels: list[int] = []
        for parents in self.label_parents:
            levels.append(1 + max((levels[p] for p in parents), default=0))
        return levels

    @property
    def depth(self) -> int:
        return max(self.label_levels, default=0)
