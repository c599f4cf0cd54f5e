"""Fitting the embeddings + logistic-regression baseline (``--model_type embed_lr``): read the checkpoint's
sentence-transformers pooling, encode texts with the frozen encoder, fit one scikit-learn
``LogisticRegression`` per label and copy the coefficients into an
:class:`~htc_tools.embed_lr.EmbedLRForHierarchicalClassification` head."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .embed_lr import EmbedLRForHierarchicalClassification
from .taxonomy import Taxonomy
from .training import label_prior_logits

logger = logging.getLogger(__name__)
DEFAULT_C = 16.0  # best dev micro- and macro-F1 of C in {1, 4, 16} on rcv1_sample (BENCHMARKS.md "embed_lr")
ST_POOLING = "sentence_transformers.models.Pooling"
ST_NORMALIZE = "sentence_transformers.models.Normalize"
ST_SUPPORTED = {"sentence_transformers.models.Transformer", ST_POOLING, ST_NORMALIZE}


def sentence_transformers_pooling(model_dir: str | Path) -> tuple[str, bool]:
    """``(pooling, normalize)`` from a local checkpoint's ``modules.json`` and ``1_Pooling/config.json``:
    the single pooling mode it sets and whether a Normalize module follows; ``("cls", False)`` when the folder
    has no sentence-transformers config. Raises on what the baseline cannot reproduce (Dense layers,
    several pooling modes at once)."""
    modules_file = Path(model_dir) / "modules.json"
    if not modules_file.is_file():
        return "cls", False
    modules = json.loads(modules_file.read_text())
    unsupported = [m["type"] for m in modules if m.get("type") not in ST_SUPPORTED]
    if unsupported:
        raise ValueError(f"{model_dir}: sentence-transformers modules {unsupported} are not supported by embed_lr "
                         "(only Transformer, Pooling and Normalize)")
    pooling = "cls"
    for module in modules:
        if module["type"] == ST_POOLING:
            config = json.loads((Path(model_dir) / module["path"] / "config.json").read_text())
            modes = [mode for mode in ("cls", "mean", "max", "mean_sqrt_len")
                     if config.get(f"pooling_mode_{mode}_tokens" if mode != "cls" else "pooling_mode_cls_token")]
            if len(modes) != 1:
                raise ValueError(f"{model_dir}: embed_lr needs exactly one pooling mode, the checkpoint sets {modes}")
            pooling = modes[0]
    return pooling, any(m["type"] == ST_NORMALIZE for m in modules)


@torch.no_grad()
def encode(model: EmbedLRForHierarchicalClassification, tokenizer, texts: Sequence[str], max_length: int = 128,
           batch_size: int = 64) -> np.ndarray:
    """Sentence embeddings of ``texts``: ``[N, H]`` float64."""
    model.eval()
    rows = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(list(texts[start:start + batch_size]), truncation=True, max_length=max_length,
                          padding=True, return_tensors="pt")
        rows.append(model.embed(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")).float())
    return torch.cat(rows).double().numpy() if rows else np.zeros((0, model.config.encoder_config.hidden_size))


def fit_label_regressions(embeddings: np.ndarray, labels: np.ndarray, c: float = DEFAULT_C, max_iter: int = 1000
                          ) -> tuple[np.ndarray, np.ndarray]:
    """One ``LogisticRegression(C=c)`` (lbfgs, L2) per label column of the multi-hot ``labels`` ``[N, L]`` on
    ``embeddings`` ``[N, H]``. A label with one class only in training (never or always present) gets a zero
    weight and its smoothed prior log-odds as intercept. Returns ``(coef [L, H], intercept [L])``."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as err:
        raise ImportError("--model_type embed_lr fits its head with scikit-learn: pip install '.[embed_lr]'") from err

    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    labels = np.asarray(labels) > 0
    num_labels = labels.shape[1]
    coef = np.zeros((num_labels, embeddings.shape[1]))
    intercept = label_prior_logits(labels.astype(np.float64)).numpy().copy()
    # one BLAS thread: many small fits; on a loaded 2-core machine threaded BLAS made them ~50x slower (measured:
    # 103 rcv1_sample labels 230 s, 230 amazon_hier labels 4 s on one thread, see BENCHMARKS.md)
    with threadpool_limits(limits=1):
        for label in range(num_labels):
            column = labels[:, label]
            if column.all() or not column.any():
                continue
            regression = LogisticRegression(C=c, max_iter=max_iter).fit(embeddings, column)
            coef[label], intercept[label] = regression.coef_[0], regression.intercept_[0]
    return coef, intercept


def fit_embed_lr(encoder_path: str, tokenizer, taxonomy: Taxonomy, texts: Sequence[str], labels: np.ndarray,
                 c: float = DEFAULT_C, max_length: int = 128, batch_size: int = 64, pooling: str | None = None,
                 normalize: bool | None = None, **config_kwargs: object) -> EmbedLRForHierarchicalClassification:
    """The fitted baseline on ``encoder_path``: pooling/normalisation from its sentence-transformers config
    unless given, the head from :func:`fit_label_regressions` on the training ``texts``/``labels`` ``[N, L]``."""
    found_pooling, found_normalize = sentence_transformers_pooling(encoder_path) if Path(encoder_path).is_dir() \
        else ("cls", False)
    pooling = found_pooling if pooling is None else pooling
    normalize = found_normalize if normalize is None else normalize
    model = EmbedLRForHierarchicalClassification.from_encoder(
        encoder_path, list(taxonomy.labels), [list(p) for p in taxonomy.parents], pooling=pooling,
        normalize=normalize, regularization_c=c, **config_kwargs)
    logger.info("embed_lr: %s pooling%s, C=%s, %d training texts", pooling, " + normalisation" if normalize else "",
                c, len(texts))
    embeddings = encode(model, tokenizer, texts, max_length, batch_size)
    coef, intercept = fit_label_regressions(embeddings, np.asarray(labels), c)
    with torch.no_grad():
        model.classifier.weight.copy_(torch.as_tensor(coef))
        model.classifier.bias.copy_(torch.as_tensor(intercept))
    return model


def load_or_fit_embed_lr(path: str, tokenizer, taxonomy: Taxonomy, train_split, c: float = DEFAULT_C,
                         max_length: int = 128, overrides: dict | None = None
                         ) -> tuple[EmbedLRForHierarchicalClassification, float]:
    """``--model_type embed_lr``: a trained embed_lr folder is loaded (its labels checked against the taxonomy),
    an encoder gets a head fitted on ``train_split`` (``text``, ``labels``). Returns the model and the fitting
    time in seconds (0 for a loaded one)."""
    from transformers import AutoConfig

    overrides = dict(overrides or {})
    config = AutoConfig.from_pretrained(path)
    if config.model_type == "embed_lr":
        if [config.id2label[i] for i in range(len(config.id2label))] != list(taxonomy.labels) or \
                [list(p) for p in config.label_parents] != [list(p) for p in taxonomy.parents]:
            raise ValueError(f"{path} was trained on another hierarchy than the taxonomy given")
        return EmbedLRForHierarchicalClassification.from_pretrained(path, **overrides), 0.0
    if train_split is None:
        raise ValueError("--model_type embed_lr on an encoder needs --do_train and a train split to fit the head")
    start = time.perf_counter()
    model = fit_embed_lr(path, tokenizer, taxonomy, list(train_split["text"]), np.asarray(train_split["labels"]),
                         c=c, max_length=max_length, **overrides)
    return model, time.perf_counter() - start
