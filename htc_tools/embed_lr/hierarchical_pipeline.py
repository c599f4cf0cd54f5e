"""``hierarchical-text-classification`` pipeline: per text, the selected labels with their scores and
root-to-label paths, from the model's ``decode()`` (threshold and hierarchy-consistency options, batching).

Output in the text-classification shape (``top_k=None``): per text a list of
``{"label": str, "score": float, "path": [root, ..., label]}``, highest score first. The keys of the earlier
per-text dict (``"labels"``, ``"scores"``, ``"paths"``, ``"all_scores"``) are removed. A label whose bare name
is ambiguous is stored as ``parent/name`` (``dogs/food``, htc_tools' path identity); it is shown by its bare
name (``food``) and its path tells it apart (``["pets", "dogs", "food"]``).

Identical copies ship in ``hbgl_hf`` and ``hpt_hf`` (each model package is self-contained; a test asserts
the copies are equal). Any model with ``decode(input_ids, attention_mask, token_type_ids, threshold=...,
hierarchy_consistent=...)`` and ``config.label_parents`` works. The models import this module, so
``save_pretrained`` (Trainer checkpoints included) copies it next to the model code and
:func:`pipeline_registration` lets ``pipeline(..., trust_remote_code=True)`` find it.
"""

from __future__ import annotations

from typing import Any

from transformers import Pipeline

PIPELINE_TASK = "hierarchical-text-classification"


class HierarchicalTextClassificationPipeline(Pipeline):
    """``pipe(texts, threshold=None, hierarchy_consistent=None, return_all_scores=False, batch_size=...)``.

    Returns per text a list of ``{"label", "score", "path"}`` dicts, one per selected label, by descending
    score (ties in taxonomy order); ``path`` is ``[root, ..., label]``. With ``return_all_scores=True`` every
    label is listed, each with ``"selected": bool``. A multi-parent label's path goes through its first
    selected parent (its first parent when none is selected).
    """

    def _sanitize_parameters(self, threshold: float | None = None, hierarchy_consistent: bool | None = None,
                             return_all_scores: bool | None = None, max_length: int | None = None,
                             **kwargs: Any) -> tuple[dict, dict, dict]:
        if kwargs:  # a misspelled or foreign option (top_k, truncation) would otherwise be ignored
            raise TypeError(f"hierarchical-text-classification pipeline: unknown keyword argument(s) "
                            f"{', '.join(sorted(kwargs))}; it takes threshold, hierarchy_consistent, "
                            "return_all_scores and max_length (and the Pipeline's batch_size, num_workers)")
        preprocess = {"max_length": max_length} if max_length is not None else {}
        forward = {k: v for k, v in (("threshold", threshold), ("hierarchy_consistent", hierarchy_consistent))
                   if v is not None}
        postprocess = {"return_all_scores": return_all_scores} if return_all_scores is not None else {}
        return preprocess, forward, postprocess

    def preprocess(self, text: str, max_length: int | None = None) -> dict:
        return self.tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")

    def _forward(self, inputs: dict, threshold: float | None = None, hierarchy_consistent: bool | None = None) -> dict:
        out = self.model.decode(inputs["input_ids"], inputs.get("attention_mask"), inputs.get("token_type_ids"),
                                threshold=threshold, hierarchy_consistent=hierarchy_consistent)
        return {"selected": out.selected, "probabilities": out.probabilities}

    def postprocess(self, outputs: dict, return_all_scores: bool = False) -> list[dict]:
        config = self.model.config
        selected = outputs["selected"][0].tolist()
        probabilities = outputs["probabilities"][0].float().tolist()
        shown = range(len(selected)) if return_all_scores else [i for i, on in enumerate(selected) if on]
        results = []
        for i in sorted(shown, key=lambda i: -probabilities[i]):  # stable: ties keep taxonomy order
            result = {"label": self._display_name(i, config.label_parents, config.id2label), "score": probabilities[i],
                      "path": self._path(i, selected, config.label_parents, config.id2label)}
            if return_all_scores:
                result["selected"] = bool(selected[i])
            results.append(result)
        return results

    @staticmethod
    def _path(label: int, selected: list[bool], parents: list[list[int]], id2label: dict) -> list[str]:
        path = [label]
        while parents[path[-1]]:
            options = parents[path[-1]]
            path.append(next((p for p in options if selected[p]), options[0]))
        return [HierarchicalTextClassificationPipeline._display_name(i, parents, id2label) for i in reversed(path)]

    @staticmethod
    def _display_name(label: int, parents: list[list[int]], id2label: dict) -> str:
        """``food`` for ``dogs/food`` under ``dogs`` (the rule of htc_tools' ``Taxonomy.display_name``)."""
        name = id2label[label]
        for p in parents[label]:
            prefix = id2label[p] + "/"
            if name.startswith(prefix) and len(name) > len(prefix):
                return name[len(prefix):]
        return name


def pipeline_registration() -> dict[str, dict]:
    """The ``config.custom_pipelines`` entry that ``Pipeline.save_pretrained`` writes for this pipeline
    (``{"hierarchical-text-classification": {"impl": "hierarchical_pipeline.Hierarchical...", ...}}``); the
    models set it at construction so every ``save_pretrained`` carries it."""
    cls = HierarchicalTextClassificationPipeline
    impl = f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"
    return {PIPELINE_TASK: {"impl": impl, "pt": ["AutoModel"], "type": "text"}}
