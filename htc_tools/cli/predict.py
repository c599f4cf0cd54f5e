"""``htc-predict``: label a file or a dataset with a trained model folder or Hub repo.

    htc-predict --model runs/my_hbgl --input texts.jsonl --output predictions.jsonl
    htc-predict --model me/my-hbgl --input my_dataset_folder --split test --text_column_name title,abstract \\
        --output predictions.jsonl --batch_size 64 --threshold 0.4 --hierarchy_consistent

``--input``: a ``.jsonl``/``.json``/``.csv``/``.parquet`` file, or a dataset (a local dataset folder, a
``save_to_disk`` folder or a Hub id), read as htc-train reads it (CSV cells as text); ``--split`` picks a split
when it has several. Writes one JSON line per input row, in input order: ``{"text", "labels", "scores", "paths"}``
(selected labels by descending score, each with its root-to-label path). HBGL/HPT models are loaded with
``AutoModel`` and ``trust_remote_code`` (their own code, the package's model classes are not needed) and run
through their ``hierarchical-text-classification`` pipeline; a flat model (``AutoModelForSequenceClassification``)
selects the labels whose sigmoid exceeds the threshold, shown like the hierarchical ones (bare name, root-to-label
path) from the hierarchy htc-train keeps in its config (a flat model without one: paths ``[label]``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from ..data_sources import load_data_files, load_source
from ..hub import PIPELINE_TASK, hierarchical_pipeline
from ..taxonomy import Taxonomy

logger = logging.getLogger(__name__)
HIERARCHICAL_TYPES = ("hbgl", "hpt")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="htc-predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a trained model folder or Hub id")
    parser.add_argument("--input", required=True, help="a .jsonl/.json/.csv/.parquet file, a dataset folder or Hub id")
    parser.add_argument("--output", required=True, help="the .jsonl file to write")
    parser.add_argument("--text_column_delimiter", default=" ",
                        help="joins several text columns (as htc-train's flag of the same name)")
    parser.add_argument("--text_column_name", default="text",
                        help="the text column; several, comma-separated, are joined with a space")
    parser.add_argument("--split", default=None, help="the dataset split (needed when it has several)")
    parser.add_argument("--dataset_config_name", default=None)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--threshold", type=float, default=None, help="default: the model's (0.5)")
    parser.add_argument("--hierarchy_consistent", action="store_true", default=None,
                        help="select a label only below a selected parent (default: the model's setting)")
    parser.add_argument("--max_length", type=int, default=None, help="truncate texts to this many tokens")
    parser.add_argument("--device", default=None, help="e.g. cpu, cuda, cuda:1 (default: cpu)")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch_size must be at least 1")
    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        parser.error("--threshold is a probability in (0, 1)")
    return args


def read_texts(source: str, text_columns: Sequence[str], split: str | None = None,
               config_name: str | None = None, delimiter: str = " ") -> list[str]:
    """The texts of a data file or a dataset split; several columns are joined with ``delimiter``."""
    path = Path(source)
    if path.is_file():  # read as htc-train reads it (CSV cells as text)
        data = load_data_files({"input": str(path)})["input"]
    else:
        loaded = load_source(source, config_name)
        if split is None and len(loaded) != 1:
            raise ValueError(f"{source} has the splits {', '.join(loaded)}; choose one with --split")
        if split is not None and split not in loaded:
            raise ValueError(f"{source} has no split {split!r}; its splits are {', '.join(loaded)}")
        data = loaded[split or next(iter(loaded))]
    missing = [c for c in text_columns if c not in data.column_names]
    if missing:
        raise ValueError(f"{source}: no column(s) {', '.join(missing)}; its columns are {', '.join(data.column_names)}"
                         " (choose with --text_column_name)")
    texts = []
    for row, values in enumerate(zip(*(data[c] for c in text_columns), strict=True)):
        if any(not isinstance(v, str) for v in values):
            raise ValueError(f"{source}: row {row}: the text column(s) {', '.join(text_columns)} hold "
                             f"{[type(v).__name__ for v in values]}, not text")
        texts.append(delimiter.join(values))
    return texts


def is_hierarchical(config) -> bool:
    """A model with the hierarchical pipeline (HBGL, HPT: by its registration or, for a folder saved before
    models carried it, its ``model_type``); anything else is read as a flat multi-label head."""
    registered = PIPELINE_TASK in (getattr(config, "custom_pipelines", None) or {})
    return registered or config.model_type in HIERARCHICAL_TYPES


def predict_hierarchical(model, tokenizer, texts: list[str], args: argparse.Namespace) -> Iterator[list[dict]]:
    pipe = hierarchical_pipeline(model, tokenizer, batch_size=args.batch_size, device=args.device)
    options = {"threshold": args.threshold, "hierarchy_consistent": args.hierarchy_consistent,
               "max_length": args.max_length}
    yield from pipe((t for t in texts), **{k: v for k, v in options.items() if v is not None})


def predict_flat(model, tokenizer, texts: list[str], args: argparse.Namespace) -> Iterator[list[dict]]:
    """Per text, the labels whose sigmoid score exceeds the threshold (0.5 by default), highest first; with the
    hierarchy in ``config.label_parents``, each shown by its bare name with its root-to-label path."""
    if args.hierarchy_consistent:
        raise ValueError(f"--hierarchy_consistent: {args.model} is a flat model ({model.config.model_type}), whose "
                         "labels are scored on their own; it applies to HBGL/HPT models")
    threshold = 0.5 if args.threshold is None else args.threshold
    parents = getattr(model.config, "label_parents", None)  # htc-train keeps the hierarchy of a flat model
    names = [model.config.id2label[i] for i in range(len(model.config.id2label))]
    taxonomy = Taxonomy.from_parents(names, parents) if parents else None
    limit = min(args.max_length or model.config.max_position_embeddings, model.config.max_position_embeddings)
    model.to(args.device or "cpu")
    for start in range(0, len(texts), args.batch_size):
        batch = tokenizer(texts[start : start + args.batch_size], truncation=True, max_length=limit, padding=True,
                          return_tensors="pt").to(model.device)
        with torch.no_grad():
            probabilities = torch.sigmoid(model(**batch).logits.float()).cpu()
        for row in probabilities:
            chosen = sorted(torch.nonzero(row > threshold).flatten().tolist(), key=lambda i: -row[i].item())
            if taxonomy is None:
                yield [{"label": model.config.id2label[i], "score": row[i].item(), "path": [model.config.id2label[i]]}
                       for i in chosen]
            else:
                yield [{"label": taxonomy.display_name(i), "score": row[i].item(), "path": taxonomy.path_names(i)}
                       for i in chosen]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    texts = read_texts(args.input, [c.strip() for c in args.text_column_name.split(",") if c.strip()], args.split,
                       args.dataset_config_name, args.text_column_delimiter)
    config = AutoConfig.from_pretrained(args.model, trust_remote_code=True)
    tokenizer = AutoTokenizer.from_pretrained(args.model, trust_remote_code=True)
    if is_hierarchical(config):
        model = AutoModel.from_pretrained(args.model, trust_remote_code=True).eval()
        predictions = predict_hierarchical(model, tokenizer, texts, args)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(args.model, trust_remote_code=True).eval()
        predictions = predict_flat(model, tokenizer, texts, args)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", encoding="utf-8") as f:
        for text, result in tqdm(zip(texts, predictions, strict=True), total=len(texts), desc="htc-predict",
                                 unit="text"):
            line = {"text": text, "labels": [r["label"] for r in result], "scores": [r["score"] for r in result],
                    "paths": [r["path"] for r in result]}
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    logger.info(f"htc-predict: {len(texts)} predictions written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
