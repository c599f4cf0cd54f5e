"""HBGLConfig: a BERT config plus the label hierarchy and HBGL's switches.

Defaults follow the paper (Jiang et al., 2022); each ``*`` switch can select the authors' code behaviour
(see reference-notes §1 and the table "Paper versus code"):

=====================  =======================================  ==========================================
field                  paper (default)                          authors' code
=====================  =======================================  ==========================================
label_init             "mean" of the name's word pieces (§4.1)  "sum"
cpt_self_attention     True: Eq. 2 allows i = j                 False
cpt_segment_id         1 (Eq. 1)                                0
cpt_target_mode        "intended": masked sibling leaves are    "hbgl_shifted": the off-by-one lookup in
                       each other's targets (Eq. 4)             sorted-name order (reference §1.4 [BUG])
cpt_mask_ratio_*       grows 0.15 -> 0.45 (Alg. 1)              max = min = 0.15 (WOS, NYT)
loss_columns           "level": level h's labels (Eq. 8)        "all": every label + [SEP] scored at every
                                                                level (inputs and targets stay per level)
empty_level_input      "sep": e_[SEP] fed for a level that      "zero": a zero vector
                       selects nothing (Eq. 11; no effect
                       under decoding="stop_at_empty")
decoding               "paper": levels 1..D, an empty level     "authors": D + 1 steps scoring [SEP] and
                       feeds the empty input and decoding goes  every label; stop at the first step whose
                       on; labels counted at their own level    [SEP] fires (its labels dropped); the union
                       (Eq. 10-12). "stop_at_empty": a path     of labels fired at any earlier step
                       ends at its first empty level            (reference §1.6; its two post-processing
                                                                bugs are not reproduced)
target_mask_prob       0.5 (s2s-ft default, not in the paper)   0.5
decode_threshold       0.5 (Eq. 11-12): a label is selected     0.5
                       when its score > logit(threshold)
loss_reduction         "example": BCE mean per example, then    "batch": one mean over every scored entry
                       over examples (not specified in the      of the batch (examples with longer paths
                       paper; exact under gradient accumulation) weigh more; GA-exact only for equal paths)
=====================  =======================================  ==========================================
"""

from __future__ import annotations

from dataclasses import field

from transformers import BertConfig

LEVELS_CACHE = "_label_levels_cache"  # (label_parents object, its length, levels)


class HBGLConfig(BertConfig):
    """``vocab_size`` includes the ``num_labels`` label rows appended at ``label_token_offset``.

    Args (beyond :class:`~transformers.BertConfig`):
        id2label: label names in taxonomy id order (level-major).
        label_parents: per label id, its parent ids (empty for top-level labels; several for a DAG).
        label_token_offset: id of the first label row in the word-embedding table (the base vocab size).
        sep_token_id, mask_token_id, cls_token_id: the encoder vocabulary's special tokens.
        cpt_attention: how the global stage's label-graph sequence attends (same result): ``"edges"`` (default) along
            the graph's edge list, ``O(L)``, each layer for the positions the masked slots' states depend on only
            (BERT-layout encoders; others attend densely); ``"dense"`` through the encoder's own attention with an
            ``[L + 2, L + 2]`` mask (Eq. 2 as written; ``O(L^2)``).
        cpt_max_labels: the most labels one global-stage sequence holds. A taxonomy that fits is one whole-graph
            sequence (Alg. 1); a larger one is trained on sampled ancestor-closed sub-graphs of this many labels
            (beyond the paper's scale, see the README). ``0``: always the whole graph.
        hierarchy_consistent: decode a label only when one of its parents was selected.
        decode_threshold: probability threshold of Eq. 11-12, applied to the scores as ``score > logit(t)`` so
            that no precision is lost in a rounded probability (bf16).
    """

    model_type = "hbgl"

    label_parents: list = field(default_factory=list)
    label_token_offset: int = 0
    cls_token_id: int = 101
    sep_token_id: int = 102
    mask_token_id: int = 103
    label_init: str = "mean"
    cpt_self_attention: bool = True
    cpt_segment_id: int = 1
    cpt_target_mode: str = "intended"
    cpt_mask_ratio_min: float = 0.15
    cpt_mask_ratio_max: float = 0.45
    cpt_attention: str = "edges"
    cpt_max_labels: int = 512
    loss_columns: str = "level"
    empty_level_input: str = "sep"
    decoding: str = "paper"
    target_mask_prob: float = 0.5
    decode_threshold: float = 0.5
    level_thresholds: list | None = None  # one probability per level (tuned on dev); overrides decode_threshold
    loss_reduction: str = "example"
    hierarchy_consistent: bool = False
    # a non-BERT encoder (encoder_backbone.py): its config (vocabulary extended by the label rows) and the width of
    # its word-embedding rows; None for a BERT encoder, whose fields are this config's own (today's layout)
    encoder_config: dict | None = None
    embedding_size: int | None = None

    def __post_init__(self, **kwargs: object) -> None:
        super().__post_init__(**kwargs)
        choices = {"label_init": ("mean", "sum"), "cpt_target_mode": ("intended", "hbgl_shifted"),
                   "loss_columns": ("level", "all"), "empty_level_input": ("sep", "zero"),
                   "decoding": ("paper", "stop_at_empty", "authors"), "loss_reduction": ("example", "batch"),
                   "cpt_attention": ("edges", "dense")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"HBGLConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        limit = self.cpt_max_labels
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"HBGLConfig.cpt_max_labels must be an integer >= 0 (0: no limit), got {limit!r}")
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
        """1-based level per label: one below its deepest parent (ids are level-major).

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
