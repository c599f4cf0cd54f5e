"""A generated model card: YAML metadata the Hub indexes, then the hierarchy, usage, results and citations."""

from __future__ import annotations

import html
import re
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

from .taxonomy import Taxonomy

CITATIONS = {
    "hbgl": """@inproceedings{jiang-etal-2022-exploiting,
  title = {Exploiting Global and Local Hierarchies for Hierarchical Text Classification},
  author = {Jiang, Ting and Wang, Deqing and Sun, Leilei and Chen, Zhongzhi and Zhuang, Fuzhen and Yang, Qinghong},
  booktitle = {Proceedings of EMNLP 2022},
  year = {2022}
}""",
    "hpt": """@inproceedings{wang-etal-2022-hpt,
  title = {{HPT}: Hierarchy-aware Prompt Tuning for Hierarchical Text Classification},
  author = {Wang, Zihan and Wang, Peiyi and Liu, Tianyu and Lin, Binghuai and Cao, Yunbo and Sui, Zhifang and
            Wang, Houfeng},
  booktitle = {Proceedings of EMNLP 2022},
  year = {2022}
}""",
}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")  # "bert-base-uncased", "owner/name"
PLAIN_NAME = re.compile(r"[\w.-]+")  # metric names such as test_macro_f1 render as they are
MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]{}|~#!])")
METHOD_NAMES = {"hbgl": "HBGL (Jiang et al., EMNLP 2022)", "hpt": "HPT (Wang et al., EMNLP 2022)",
                "embed_lr": "Frozen sentence embeddings + per-label logistic regression"}

TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

{{ method }} hierarchical text classifier{% if base_model %} on `{{ base_model }}`{% endif %}, trained with
`hbgl-hpt-hf`. It predicts a set of labels from a {{ depth }}-level taxonomy of
{{ num_labels }} labels ({{ level_sizes }}).

## Label hierarchy

{{ hierarchy }}

## Usage

The model code ships with the weights, so only `transformers` is needed:

```python
from transformers import pipeline

classifier = pipeline("{{ task }}", model="{{ repo }}", trust_remote_code=True)
classifier(["first text", "second text"], threshold=0.5, hierarchy_consistent=True)
# [{"labels": [...], "scores": [...], "paths": [["top", ..., "label"], ...]}, ...]

# or the stock pipeline (per-label sigmoid scores)
pipeline("text-classification", model="{{ repo }}", trust_remote_code=True, top_k=None,
         function_to_apply="sigmoid")

# or the model itself
from transformers import AutoModel, AutoTokenizer
model = AutoModel.from_pretrained("{{ repo }}", trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained("{{ repo }}")
decoded = model.decode(**tokenizer(["a text"], return_tensors="pt"))  # probabilities, selected
```

## Results

{{ results }}

## Citations

{% for citation in citations %}
```bibtex
{{ citation }}
```
{% endfor %}
"""


def escape_markdown(text: str) -> str:
    """``text`` shown literally in Markdown: HTML escaped, Markdown punctuation backslash-escaped, one line."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(" ".join(text.split()), quote=False))


def hub_model_id(name_or_path: str | None) -> str | None:
    """``name_or_path`` when it reads as a Hub model id and is no local folder, else ``None`` (a local path is
    never written into a card)."""
    if not name_or_path or not HUB_ID.match(name_or_path) or ".." in name_or_path or Path(name_or_path).exists():
        return None
    return name_or_path


def _hierarchy_summary(taxonomy: Taxonomy, max_lines: int = 30) -> str:
    top = taxonomy.top_level
    lines = [f"- **{escape_markdown(taxonomy.labels[i])}** ({len(taxonomy.children[i])} children)"
             for i in top[:max_lines]]
    if len(top) > max_lines:
        lines.append(f"- ... and {len(top) - max_lines} more top-level labels")
    return "\n".join(lines)


def build_model_card(model, base_model: str | None = None, dataset_name: str | None = None,
                     results: dict[str, float] | None = None, repo_id: str | None = None,
                     language: str | None = "en", license: str | None = None) -> ModelCard:
    """Model card of an HBGL/HPT (or flat) model; ``results``: e.g. ``all_results.json`` (``*_f1`` rows shown).
    ``base_model`` is kept only as a Hub id (a local encoder path is left out); label names are escaped."""
    base_model = hub_model_id(base_model)
    config = model.config
    method = config.model_type if config.model_type in METHOD_NAMES else "flat"
    names = [config.id2label[i] for i in range(len(config.id2label))]
    taxonomy = Taxonomy.from_parents(names, getattr(config, "label_parents", None) or [[] for _ in names])
    metrics = {k: float(v) for k, v in (results or {}).items() if k.endswith("_f1")}
    card_data = ModelCardData(
        library_name="transformers", pipeline_tag="text-classification", language=language, license=license,
        tags=["hierarchical-text-classification", "multi-label", method, "custom_code"],
        base_model=base_model if base_model and "/" in base_model else None,  # owner/name: a Hub link
        datasets=[dataset_name] if dataset_name else None, metrics=["f1"],
    )
    rows = "\n".join(f"| {k if PLAIN_NAME.fullmatch(k) else escape_markdown(k)} | {v:.4f} |"
                     for k, v in sorted(metrics.items()))
    return ModelCard.from_template(
        card_data, template_str=TEMPLATE, title=f"{method.upper()} hierarchical classifier",
        method=METHOD_NAMES.get(method, "Flat multi-label"), base_model=base_model, depth=taxonomy.depth,
        num_labels=taxonomy.num_labels,
        level_sizes=", ".join(f"level {d + 1}: {len(ids)}" for d, ids in enumerate(taxonomy.labels_per_level)),
        hierarchy=_hierarchy_summary(taxonomy),
        task="hierarchical-text-classification" if hasattr(model, "decode") else "text-classification",
        repo=repo_id or "path/to/this/folder",
        results=f"| metric | value |\n|---|---|\n{rows}" if rows else "Not evaluated.",
        citations=[CITATIONS[m] for m in ("hbgl", "hpt")],
    )
