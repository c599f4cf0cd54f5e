"""HPTConfig: a BERT config plus the label hierarchy, the prompt layout and HPT's switches.

Defaults follow the paper (Wang et al., 2022); each switch can select the authors' code behaviour
(reference-notes §2 and the table "Paper versus code"):

=====================  ==============================================  ======================================
field                  paper (default)                                 authors' code
=====================  ==============================================  ======================================
template_text_sep      True: ``[CLS] x [SEP] V1 [PRED] ...`` (Table 5)  False: no [SEP] before the template
zmlce_mode             "per_depth": one ZMLCE per layer, summed          "per_example_global": one ZMLCE over
                       (Eq. 10-11)                                       all labels per example
mlm_eligible           "text": 15 % of the text's words (§4.2)          "ordinary": any non-prompt token,
                                                                         [CLS]/[SEP] included
label_init             "mean" of the name's word pieces                 "mean_with_special": [CLS] name [SEP]
graph_edges            "undirected": a node hears all its neighbours,   "parent_to_child": messages flow
                       virtual node d hears depth d's labels (§4.1.2)   parent->child and virtual->label only
                                                                         (so V_d hears only itself)
graph_residual         "plain": t' = t + g (Eq. 5)                      "layer_norm": LayerNorm(t + g)
                                                                         (reference §2.5)
verbalizer_bias        "label": one learnable b_l per label (after      "mlm_plus_label": the MLM decoder's
                       Eq. 10; a label is scored at one layer only)     bias of the label row + one extra
                                                                         bias per label (reference §2.6, P3)
early stopping         macro-F1 not improving for 6 epochs (§5.1)      neither macro- nor micro-F1 improving
                       (the Trainer's EarlyStoppingCallback)            (htc_tools MacroMicroEarlyStopping)
=====================  ==============================================  ======================================

Both use one GAT layer, an MLM loss of weight 1 and ``score > 0`` prediction (``decode_threshold`` 0.5).
"""

from __future__ import annotations

from dataclasses import field

from transformers import BertConfig

LEVELS_CACHE = "_label_levels_cache"  # (label_parents object, its length, levels)


class HPTConfig(BertConfig):
    """``vocab_size`` includes the prompt rows appended at ``label_token_offset``: ``num_labels`` label words,
    then ``depth`` virtual depth tokens ``V_1 .. V_D``, then ``[PRED]``.

    Args (beyond :class:`~transformers.BertConfig`):
        id2label: label names in taxonomy id order (level-major).
        label_parents: per label id, its parent ids (empty for top-level labels; several for a DAG).
        label_token_offset: id of the first label row in the word-embedding table (the base vocab size).
        cls_token_id, sep_token_id, mask_token_id: the encoder vocabulary's special tokens.
        graph_layers: stacked GAT layers (K in Eq. 4; the paper and code use 1).
        graph_dropout: dropout on the GAT output before the residual (None: ``attention_probs_dropout_prob``).
        mlm_loss_weight: weight of the MLM loss (Eq. 11; 1 in the paper and code, 0 disables it).
        mlm_probability: share of eligible tokens the MLM loss is computed on.
        decode_threshold: a label is predicted when its score > logit(threshold) (0.5: ``score > 0``, §4.2),
            compared on the score itself (no precision lost in a rounded probability).
        hierarchy_consistent: predict a label only when one of its parents is predicted.
    """

    model_type = "hpt"

    label_parents: list = field(default_factory=list)
    label_token_offset: int = 0
    cls_token_id: int = 101
    sep_token_id: int = 102
    mask_token_id: int = 103
    template_text_sep: bool = True
    zmlce_mode: str = "per_depth"
    mlm_eligible: str = "text"
    label_init: str = "mean"
    graph_edges: str = "undirected"
    graph_residual: str | None = None  # None: "plain", or "layer_norm" for a config.json saved before the switch
    verbalizer_bias: str | None = None  # None: "label", or "mlm_plus_label" for a config.json saved before it
    graph_layers: int = 1
    graph_dropout: float | None = None
    mlm_loss_weight: float = 1.0
    mlm_probability: float = 0.15
    decode_threshold: float = 0.5
    level_thresholds: list | None = None  # one probability per level (tuned on dev); overrides decode_threshold
    hierarchy_consistent: bool = False
    # a non-BERT encoder (encoder_backbone.py): its config (vocabulary extended by the prompt rows) and the width of
    # its word-embedding rows; None for a BERT encoder, whose fields are this config's own (today's layout)
    encoder_config: dict | None = None
    embedding_size: int | None = None

    def __post_init__(self, **kwargs: object) -> None:
        super().__post_init__(**kwargs)
        # a config.json written before these switches existed (it has a transformers_version but not the keys)
        # describes the model as it was then: LayerNorm after the graph layer, MLM bias + label bias
        saved_before = getattr(self, "transformers_version", None) is not None
        if self.graph_residual is None:
            self.graph_residual = "layer_norm" if saved_before else "plain"
        if self.verbalizer_bias is None:
            self.verbalizer_bias = "mlm_plus_label" if saved_before else "label"
        choices = {"zmlce_mode": ("per_depth", "per_example_global"), "mlm_eligible": ("text", "ordinary"),
                   "label_init": ("mean", "mean_with_special"), "graph_edges": ("undirected", "parent_to_child"),
                   "graph_residual": ("plain", "layer_norm"), "verbalizer_bias": ("label", "mlm_plus_label")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"HPTConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        self._check_hierarchy()

    def _check_hierarchy(self) -> None:
        """Label ids ``0 .. L-1`` and, per label, a list of integer parent ids below its own id (ids are
        level-major), so that an edited config.json fails here with what to fix, not later with wrong levels."""
        if not self.label_parents:
            return
        ids = sorted(self.id2label)
        if ids != list(range(len(ids))):
            raise ValueError(f"id2label must map the ids 0 .. {len(ids) - 1} (one per label, in taxonomy order), got "
                             f"the ids {ids}; renumber id2label, label2id and label_parents together")
        if len(self.label_parents) != len(self.id2label):
            raise ValueError(f"label_parents has {len(self.label_parents)} entries but id2label has "
                             f"{len(self.id2label)} labels")
        for i, parents in enumerate(self.label_parents):
            label = f"label {i} ({self.id2label[i]!r})"
            if not isinstance(parents, (list, tuple)):
                raise ValueError(f"{label} has parents {parents!r} ({type(parents).__name__}): each entry of "
                                 "label_parents must be a list of parent ids ([] for a top-level label)")
            for p in parents:
                if isinstance(p, bool) or not isinstance(p, int):
                    raise ValueError(f"{label} has parent id {p!r} ({type(p).__name__}): parent ids must be integers, "
                                     "the ids of id2label; write label_parents as lists of integers")
                if p < 0:
                    raise ValueError(f"{label} has parent id {p}: a parent id is the id of an earlier label "
                                     f"(0 .. {i - 1}); a top-level label has no parents ([])")
                if p >= i:
                    raise ValueError(f"{label} has a parent with an id >= its own ({p}); ids must be level-major "
                                     "(parents first): renumber the labels so that every parent comes before its "
                                     "children")

    # ------------------------------------------------------------- hierarchy bookkeeping
    @property
    def label_levels(self) -> list[int]:
        """1-based level (HPT's "layer") per label: one below its deepest parent (ids are level-major).

        Derived once per ``label_parents`` list (a Python pass over 98.5k labels on every access made each use
        ``O(L)``): assigning a new ``label_parents`` recomputes it; edit a hierarchy by assigning, not in place.
        """
        cached = self.__dict__.get(LEVELS_CACHE)
        if cached is not None and cached[0] is self.label_parents and cached[1] == len(self.label_parents):
            return cached[2]
        levels: list[int] = []
        for i, parents in enumerate(self.label_parents):
            if any(p >= i for p in parents):
                raise ValueError(f"label {i} ({self.id2label[i]!r}) has a parent with an id >= its own; "
                                 "ids must be level-major (parents first)")
            levels.append(1 + max((levels[p] for p in parents), default=0))
        self.__dict__[LEVELS_CACHE] = (self.label_parents, len(self.label_parents), levels)
        return levels

    def _remove_keys_not_serialized(self, d: dict) -> None:
        super()._remove_keys_not_serialized(d)
        d.pop(LEVELS_CACHE, None)  # a cache, not a setting

    @property
    def depth(self) -> int:
        return max(self.label_levels, default=0)

    @property
    def virtual_token_ids(self) -> list[int]:
        """Ids of ``V_1 .. V_D`` in the extended vocabulary."""
        start = self.label_token_offset + self.num_labels
        return list(range(start, start + self.depth))

    @property
    def pred_token_id(self) -> int:
        return self.label_token_offset + self.num_labels + self.depth
