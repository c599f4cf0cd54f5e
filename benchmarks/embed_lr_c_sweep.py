#!/usr/bin/env python
"""The embed_lr baseline's C on one shared dataset: encode train/dev/test once with the frozen encoder (mean
pooled, normalised, as all-MiniLM-L6-v2's sentence-transformers config says), then per C fit the per-label
logistic regressions and print dev/test micro/macro-F1 at 0.5 and with dev-tuned thresholds (global, per level).

    python benchmarks/embed_lr_c_sweep.py --dataset ../shared/datasets/rcv1_sample --cs 1 4 16
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from common import SHARED
from transformers import AutoTokenizer

from htc_tools.data import load_dataset_dir
from htc_tools.embed_lr import EmbedLRForHierarchicalClassification
from htc_tools.embed_lr_training import encode, fit_label_regressions, sentence_transformers_pooling
from htc_tools.metrics import micro_macro_f1
from htc_tools.threshold_tuning import probability_selector, tune_thresholds
from htc_tools.training import resolve_model_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(SHARED / "datasets" / "rcv1_sample"))
    parser.add_argument("--cs", nargs="+", type=float, default=[1.0, 4.0, 16.0])
    parser.add_argument("--max_seq_length", type=int, default=64)
    parser.add_argument("--max_train_samples", type=int, default=None)
    args = parser.parse_args()
    splits, taxonomy = load_dataset_dir(args.dataset)
    path = resolve_model_path("embedded-minilm")
    pooling, normalize = sentence_transformers_pooling(path)
    model = EmbedLRForHierarchicalClassification.from_encoder(
        path, list(taxonomy.labels), [list(p) for p in taxonomy.parents], pooling=pooling, normalize=normalize)
    tokenizer = AutoTokenizer.from_pretrained(path)
    start = time.perf_counter()
    x, y = {}, {}
    for split in ("train", "dev", "test"):
        rows = splits[split].select(range(min(args.max_train_samples, len(splits[split])))) \
            if split == "train" and args.max_train_samples else splits[split]
        x[split], y[split] = encode(model, tokenizer, rows["text"], args.max_seq_length), np.asarray(rows["labels"])
    print(f"encoding: {time.perf_counter() - start:.0f} s", flush=True)
    for c in args.cs:
        start = time.perf_counter()
        coef, intercept = fit_label_regressions(x["train"], y["train"], c)
        fit_seconds = time.perf_counter() - start
        p = {s: 1 / (1 + np.exp(-(x[s] @ coef.T + intercept))) for s in ("dev", "test")}
        row = {"C": c, "fit_s": round(fit_seconds, 1)}
        for s in ("dev", "test"):
            scores = micro_macro_f1(y[s], p[s] > 0.5)
            row[f"{s}@0.5"] = [round(scores["micro_f1"], 4), round(scores["macro_f1"], 4)]
        for mode in ("global", "per_level"):
            best, levels, _ = tune_thresholds(probability_selector(p["dev"], taxonomy), y["dev"], taxonomy.depth, mode)
            levels = levels or [best] * taxonomy.depth
            scores = micro_macro_f1(y["test"], probability_selector(p["test"], taxonomy)(levels))
            row[f"test@{mode}"] = [levels, round(scores["micro_f1"], 4), round(scores["macro_f1"], 4)]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
