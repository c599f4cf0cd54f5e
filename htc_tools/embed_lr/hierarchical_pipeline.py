"""``hierarchical-text-classification`` pipeline: per text, the selected labels with their scores and
root-to-label paths, from the model's ``decode()`` (threshold and hierarchy-consistency options, batching).

Identical copies ship in ``hbgl_hf`` and ``hpt_hf`` (each model package is self-contained; a test asserts
the copies are equal). Any model with ``decode(input_ids, attention_mask, token_type_ids, threshold=...,
hierarchy_consistent=...)`` and ``config.label_parents`` works.
"""

from __future__ import annotations

from typing import Any

from transformers import Pipeline


class HierarchicalTextClassificationPipeline(Pipeline):
    """``pipe(texts, threshold=None, hierarchy_consistent=None, return_all_scores=False, batch_size=...)``.

    Returns per text ``{"labels": [...], "scores": [...], "paths": [[root, ..., label], ...]}`` (labels in
    taxonomy order; ``"all_scores": {label: probability}`` with ``return_all_scores=True``). A multi-parent
    label's path goes through its first selected parent (its first parent when none is selected).
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

    def postprocess(self, outputs: dict, return_all_scores: bool = False) -> dict:
        config = self.model.config
        selected = outputs["selected"][0].tolist()
        probabilities = outputs["probabilities"][0].float().tolist()
        chosen = [i for i, on in enumerate(selected) if on]
        result = {
            "labels": [config.id2label[i] for i in chosen],
            "scores": [probabilities[i] for i in chosen],
            "paths": [self._path(i, selected, config.label_parents, config.id2label) for i in chosen],
        }
        if return_all_scores:
            result["all_scores"] = {config.id2label[i]: p for i, p in enumerate(probabilities)}
        return result

    @staticmethod
    def _path(label: int, selected: list[bool], parents: list[list[int]], id2label: dict) -> list[str]:
        path = [label]
        while parents[path[-1]]:
            options = parents[path[-1]]
            path.append(next((p for p in options if selected[p]), options[0]))
        return [id2label[i] for i in reversed(path)]
