#!/usr/bin/env python
"""The README main job: fine-tune HBGL, HPT and the flat baseline on the embedded ICD-10-CM data with the
embedded all-MiniLM-L6-v2 encoder (same budget for all three), fit the frozen-embeddings + logistic-regression
baseline (embed_lr) on the same texts, print dev/test micro/macro-F1 side by side,
then reload the saved HBGL and HPT folders with ``trust_remote_code`` and print pipeline predictions with
their root-to-label paths.

    python examples/demo.py [--output_dir runs/demo] [--epochs 10] [--model_types hbgl hpt flat embed_lr]

10 epochs: at 3, HBGL and HPT stayed far below embed_lr on this data (BENCHMARKS.md "Worth using?").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from run_hierarchical_classification import main as run
from transformers import pipeline

from htc_tools.cli.train import RECIPE_LABEL_PRETRAINING_STEPS, RECIPE_LEARNING_RATE, RECIPE_TRAINING_DEFAULTS

SAMPLE_TEXTS = (
    "Acute myocardial infarction of the inferior wall",
    "Generalized anxiety disorder with panic attacks",
    "Malignant neoplasm of the upper lobe of the left lung",
)
# per-method settings on top of the shared budget (see README "Main job")
METHOD_ARGS = {
    "hbgl": ["--label_pretraining_steps", str(RECIPE_LABEL_PRETRAINING_STEPS), "--label_pretraining_learning_rate",
             "1e-3"],
    "hpt": [],
    "flat": [],
    "embed_lr": [],  # frozen encoder, one logistic regression per label (C: the CLI's default); no fine-tuning
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="runs/demo")
    # the recipe of the CLI's defaults (htc_tools.cli.train), one source for both
    parser.add_argument("--epochs", type=float, default=RECIPE_TRAINING_DEFAULTS["num_train_epochs"])
    parser.add_argument("--learning_rate", type=float, default=RECIPE_LEARNING_RATE)
    parser.add_argument("--batch_size", type=int, default=RECIPE_TRAINING_DEFAULTS["per_device_train_batch_size"])
    parser.add_argument("--max_seq_length", type=int, default=32)
    parser.add_argument("--model_types", nargs="+", default=list(METHOD_ARGS), choices=list(METHOD_ARGS))
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    table = {}
    for model_type in args.model_types:
        print(f"\n== training {model_type} ==", flush=True)
        table[model_type] = run([
            "--model_type", model_type, "--output_dir", str(Path(args.output_dir) / model_type),
            "--overwrite_output_dir",
            "--do_train", "--do_eval", "--do_predict", "--num_train_epochs", str(args.epochs),
            "--learning_rate", str(args.learning_rate), "--per_device_train_batch_size", str(args.batch_size),
            "--per_device_eval_batch_size", "128", "--warmup_steps", str(RECIPE_TRAINING_DEFAULTS["warmup_steps"]),
            "--max_seq_length", str(args.max_seq_length), "--eval_strategy", "no", "--save_strategy", "no",
            "--logging_steps", "50", "--seed", "42", *METHOD_ARGS[model_type],
        ])
    print("\n== results on the embedded ICD-10-CM data (all-MiniLM-L6-v2, same budget) ==")
    print(f"{'model':8} {'dev micro':>10} {'dev macro':>10} {'test micro':>11} {'test macro':>11}")
    for model_type, r in table.items():
        print(f"{model_type:8} {r['eval_micro_f1']:10.4f} {r['eval_macro_f1']:10.4f} "
              f"{r['test_micro_f1']:11.4f} {r['test_macro_f1']:11.4f}")
    for model_type in (t for t in args.model_types if t != "flat"):
        folder = str(Path(args.output_dir) / model_type)
        classifier = pipeline("hierarchical-text-classification", model=folder, trust_remote_code=True)
        print(f"\n== {model_type}: pipeline(\"hierarchical-text-classification\", model={folder!r}, "
              "trust_remote_code=True) ==")
        for text, result in zip(SAMPLE_TEXTS, classifier(list(SAMPLE_TEXTS)), strict=True):
            print(json.dumps(text))
            for prediction in result:  # {"label", "score", "path"} per selected label, highest score first
                print(f"  {prediction['score']:.3f}  {' > '.join(prediction['path'])}")
            if not result:
                print("  (no label above the threshold)")


if __name__ == "__main__":
    main()
