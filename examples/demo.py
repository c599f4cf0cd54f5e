#!/usr/bin/env python
"""The README main job: train, evaluate and predict on the embedded ICD-10-CM data with the embedded
all-MiniLM-L6-v2 encoder, then print dev/test micro/macro-F1 and pipeline predictions with paths.

    python examples/demo.py [--output_dir runs/demo] [--epochs 5]

Model types available now: ``flat`` (the stock multi-label ``AutoModelForSequenceClassification``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from run_hierarchical_classification import DEFAULT_DATA
from run_hierarchical_classification import main as run
from transformers import pipeline

from htc_tools.data import find_taxonomy_file
from htc_tools.taxonomy import load_taxonomy

MODEL_TYPES = ("flat",)
SAMPLE_TEXTS = (
    "Acute myocardial infarction of the inferior wall",
    "Generalized anxiety disorder with panic attacks",
    "Malignant neoplasm of the upper lobe of the left lung",
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="runs/demo")
    parser.add_argument("--epochs", type=float, default=5)
    parser.add_argument("--learning_rate", type=float, default=2e-4)
    parser.add_argument("--max_seq_length", type=int, default=48)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    taxonomy = load_taxonomy(find_taxonomy_file(DEFAULT_DATA))
    table = {}
    for model_type in MODEL_TYPES:
        out = Path(args.output_dir) / model_type
        table[model_type] = run([
            "--model_type", model_type, "--output_dir", str(out), "--do_train", "--do_eval", "--do_predict",
            "--num_train_epochs", str(args.epochs), "--learning_rate", str(args.learning_rate),
            "--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "64", "--warmup_steps", "0.05",
            "--max_seq_length", str(args.max_seq_length), "--eval_strategy", "no", "--save_strategy", "no",
            "--logging_steps", "50", "--seed", "42",
        ])
    print("\n== results on the embedded ICD-10-CM data (all-MiniLM-L6-v2) ==")
    print(f"{'model':8} {'dev micro':>10} {'dev macro':>10} {'test micro':>11} {'test macro':>11}")
    for model_type, r in table.items():
        print(f"{model_type:8} {r['eval_micro_f1']:10.4f} {r['eval_macro_f1']:10.4f} "
              f"{r['test_micro_f1']:11.4f} {r['test_macro_f1']:11.4f}")
    for model_type in MODEL_TYPES:
        classifier = pipeline("text-classification", model=str(Path(args.output_dir) / model_type), top_k=None,
                              function_to_apply="sigmoid")
        print(f"\n== {model_type}: pipeline predictions (probability > 0.5) with their root-to-label paths ==")
        for text, scores in zip(SAMPLE_TEXTS, classifier(list(SAMPLE_TEXTS)), strict=True):
            chosen = [s for s in scores if s["score"] > 0.5]
            print(json.dumps(text))
            for s in chosen:
                path = " > ".join(taxonomy.labels[i] for i in taxonomy.paths(taxonomy.id(s["label"]))[0])
                print(f"  {s['score']:.3f}  {path}")
            if not chosen:
                print("  (no label above 0.5)")


if __name__ == "__main__":
    main()
