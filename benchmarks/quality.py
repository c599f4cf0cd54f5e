#!/usr/bin/env python
"""Quality of HBGL, HPT and the flat baseline with the same encoder, budget, seeds and max length: test
micro/macro-F1, hierarchical F1, per-level F1 and inconsistency rate, mean +- sd over seeds. Writes the
"quality" section of BENCHMARKS.md.

    python benchmarks/quality.py --datasets ../shared/datasets/amazon_hier ../shared/datasets/rcv1_sample \\
        --seeds 1 2 3 --epochs 3 --learning_rate 5e-4 --max_seq_length 64 --max_train_samples 2000

Each run is ``examples/run_hierarchical_classification.py`` (the product path: Trainer, decode-based
evaluation, the model folder), with the dev split used for nothing but reporting (no early stopping).
Every finished run is kept in ``benchmarks/results/quality-<datasets>.json`` at once; ``--resume`` reuses
the runs (dataset, method, seed) found there, so an interrupted benchmark continues where it stopped; a kept
run trained with other settings is refused.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

from common import REPO, SHARED, command, machine, markdown_table, write_section
from transformers import HfArgumentParser

from htc_tools.cli.train import ModelArguments, recipe_label_learning_rate_factor

sys.path.insert(0, str(REPO / "examples"))
from run_hierarchical_classification import main as run

# method -> (--model_type, extra arguments); "flat" is the stock head with its bias at the label priors,
# "flat_zero_bias" the stock head as initialised by transformers
METHODS = {"flat": ("flat", []), "flat_zero_bias": ("flat", ["--classifier_bias_init", "zero"]),
           "hbgl": ("hbgl", []), "hpt": ("hpt", []), "embed_lr": ("embed_lr", [])}
COLUMNS = ("micro_f1", "macro_f1", "hier_f1", "inconsistency_rate")
# seconds of training: the Trainer's (embed_lr: encoding + fitting) and HBGL's label pre-training before it
TIME_KEYS = ("train_runtime", "train_label_pretraining_runtime")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=[str(SHARED / "datasets" / "amazon_hier"),
                                                          str(SHARED / "datasets" / "rcv1_sample")])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--max_seq_length", type=int, default=64)
    parser.add_argument("--model_name_or_path", default="embedded-minilm")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--learning_rate", type=float, default=5e-4)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_train_samples", type=int, default=None)
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs (dataset, method, seed) already in this benchmark's results file, "
                             "those of other methods and seeds included (one table over several invocations)")
    parser.add_argument("--label_pretraining_steps", type=int, default=100, help="HBGL's global stage")
    parser.add_argument("--tune_threshold", default="none", choices=["none", "global", "per_level"],
                        help="decision threshold tuned on dev (per_level: not for flat, which gets global)")
    parser.add_argument("--embed_lr_c", type=float, default=None, help="embed_lr: C (default: the CLI's)")
    parser.add_argument("--recipe_args", default="",
                        help="extra CLI arguments for the fine-tuned methods, e.g. '--label_score_bias_init prior "
                             "--head_learning_rate 1e-3'")
    parser.add_argument("--tag", default="", help="suffix of the results file and BENCHMARKS.md section")
    return parser.parse_args()


def run_argv(args: argparse.Namespace, dataset: str, method: str, seed: int) -> list[str]:
    """The training CLI's arguments of one run, ``--output_dir`` aside, with the CLI's default label-row rate
    written out (the recorded settings then name it)."""
    argv = cli_argv(args, dataset, method, seed)
    label_rate = default_label_rate(args, argv)
    return argv if label_rate is None else [*argv, "--label_learning_rate", label_rate]


def cli_argv(args: argparse.Namespace, dataset: str, method: str, seed: int) -> list[str]:
    """The arguments of one run as the options give them."""
    model_type, extra = METHODS[method]
    argv = ["--model_type", model_type, *extra, "--model_name_or_path", args.model_name_or_path,
            "--dataset_dir", dataset, "--do_train", "--do_predict",
            "--num_train_epochs", str(args.epochs), "--learning_rate", str(args.learning_rate),
            "--per_device_train_batch_size", str(args.batch_size), "--per_device_eval_batch_size",
            "64", "--max_seq_length", str(args.max_seq_length), "--warmup_steps", "0.05",
            "--seed", str(seed), "--eval_strategy", "no", "--save_strategy", "no",
            "--logging_steps", "100", "--disable_tqdm", "true", "--report_to", "none"]
    if args.max_train_samples:
        argv += ["--max_train_samples", str(args.max_train_samples)]
    if model_type == "hbgl":
        argv += ["--label_pretraining_steps", str(args.label_pretraining_steps)]
    if args.tune_threshold != "none":
        argv += ["--tune_threshold", "global" if model_type == "flat" else args.tune_threshold]
    if model_type == "embed_lr" and args.embed_lr_c is not None:
        argv += ["--embed_lr_c", str(args.embed_lr_c)]
    if model_type in ("hbgl", "hpt", "flat"):
        argv += shlex.split(args.recipe_args)
    return argv


def default_label_rate(args: argparse.Namespace, argv: list[str]) -> str | None:
    """The label-row rate the CLI gives a run of ``argv`` by default (HBGL/HPT on the embedded encoder), or None."""
    model_args = HfArgumentParser(ModelArguments).parse_args_into_dataclasses(argv, return_remaining_strings=True)[0]
    factor = recipe_label_learning_rate_factor(model_args)
    return None if factor is None else str(factor * args.learning_rate)


def recorded_settings(argv: list[str]) -> list[str]:
    """What a kept run is compared by: its arguments with the dataset by folder name (the results file is per
    dataset names; the folder may move) and without the seed (a run's own key)."""
    settings, items = [], iter(argv)
    for arg in items:
        if arg in ("--dataset_dir", "--seed"):
            value = next(items)
            settings += [arg, Path(value).name] if arg == "--dataset_dir" else []
        else:
            settings.append(arg)
    return settings


def check_kept_settings(args: argparse.Namespace, done: dict[str, list[dict]]) -> None:
    """``--resume`` puts kept runs in one table under this invocation's settings line: refuse a kept run that was
    trained with other settings (epochs, learning rate, recipe arguments...) instead of mixing it in silently.
    Runs recorded before settings were kept are refused in a row that this invocation adds runs to (the CLI's
    defaults may have changed since), and named otherwise (a table rebuilt from its file)."""
    unrecorded = []
    for key, runs in done.items():
        dataset_name, method = key.split("/")
        if method not in METHODS:
            raise SystemExit(f"--resume: the results file holds runs of {method!r}, which this script no longer "
                             f"knows ({', '.join(METHODS)}): use another --tag or no --resume")
        expected = recorded_settings(run_argv(args, dataset_name, method, 0))  # recorded by the folder's name
        adds_runs = method in args.methods and any(s not in {r["seed"] for r in runs} for s in args.seeds)
        for run_record in runs:
            if "settings" not in run_record and adds_runs:
                raise SystemExit(f"--resume: the kept run {key} seed {run_record['seed']} has no recorded settings "
                                 "and cannot be checked against the runs this invocation adds to its row: use "
                                 "another --tag or no --resume")
            if "settings" not in run_record:
                unrecorded.append(f"{key} seed {run_record['seed']}")
            elif run_record["settings"] != expected:
                raise SystemExit(
                    f"--resume: the kept run {key} seed {run_record['seed']} was trained with\n  "
                    f"{shlex.join(run_record['settings'])}\nbut this invocation would run\n  {shlex.join(expected)}\n"
                    "Use the same options, another --tag, or no --resume.")
    if unrecorded:
        print(f"--resume: kept runs without recorded settings (not checked): {', '.join(unrecorded)}", flush=True)


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.2f} ± {100 * sd:.2f}"


def main() -> None:
    args = parse_args()
    name = "quality-" + "-".join(Path(d).name for d in args.datasets) + (f"-{args.tag}" if args.tag else "")
    results_file = REPO / "benchmarks" / "results" / f"{name}.json"
    results_file.parent.mkdir(parents=True, exist_ok=True)
    done = json.loads(results_file.read_text()) if args.resume and results_file.exists() else {}
    results: dict[tuple[str, str], list[dict]] = {}
    for key, runs in done.items():  # --resume: every kept run stays in the file and the table
        dataset_name, method = key.split("/")
        wanted = dataset_name in {Path(d).name for d in args.datasets} and method in args.methods
        results[(dataset_name, method)] = [r for r in runs if not wanted or r["seed"] not in args.seeds]
    check_kept_settings(args, done)
    for dataset in args.datasets:
        for method in args.methods:
            for seed in args.seeds:
                kept = [r for r in done.get(f"{Path(dataset).name}/{method}", []) if r["seed"] == seed]
                if kept:
                    results.setdefault((Path(dataset).name, method), []).append(kept[0])
                    continue
                with tempfile.TemporaryDirectory() as out:
                    argv = run_argv(args, dataset, method, seed)
                    metrics = {**run([*argv, "--output_dir", out]), "seed": seed,
                               "settings": recorded_settings(argv)}
                results.setdefault((Path(dataset).name, method), []).append(metrics)
                results_file.write_text(json.dumps(  # after every run: an interrupted benchmark keeps its runs
                    {f"{d}/{m}": runs for (d, m), runs in results.items()}, indent=1))
                print(Path(dataset).name, method, seed, {c: round(metrics[f"test_{c}"], 4) for c in COLUMNS},
                      flush=True)
    rows = []
    for (dataset, method), runs in results.items():
        levels = sorted({k for k in runs[0] if k.startswith("test_level_") and k.endswith("_macro_f1")})
        per_level = " / ".join(mean_sd([r[k] for r in runs]) for k in levels)
        # HBGL runs recorded before the stage's time was (or without a stage): the row counts fine-tuning alone
        stage_unrecorded = method == "hbgl" and any(TIME_KEYS[1] not in r for r in runs)
        time_keys = TIME_KEYS[:1] if stage_unrecorded else TIME_KEYS
        minutes = statistics.mean(sum(r.get(k, 0.0) for k in time_keys) for r in runs) / 60
        run_seeds = ", ".join(str(r["seed"]) for r in sorted(runs, key=lambda r: r["seed"]))
        rows.append([dataset, method, run_seeds, *(mean_sd([r[f"test_{c}"] for r in runs]) for c in COLUMNS),
                     per_level, f"{minutes:.1f}" + (" (fine-tuning only)" if stage_unrecorded else "")])
    seeds = f"seeds {args.seeds}" + (" in this invocation (`--resume` kept earlier ones: the seeds column lists "
                                      "every run of a row)" if args.resume else "")
    settings = (f"Encoder `{args.model_name_or_path}`, {seeds}, {args.epochs} epochs, lr {args.learning_rate}, batch "
                f"{args.batch_size}, max length {args.max_seq_length}"
                + (f", first {args.max_train_samples} training texts" if args.max_train_samples else "")
                + f"; HBGL adds {args.label_pretraining_steps} label pre-training steps"
                + "".join(f"; {m.upper()}'s label rows at {rate} (the CLI's default)" for m in ("hbgl", "hpt")
                          if m in args.methods
                          and (rate := default_label_rate(args, cli_argv(args, args.datasets[0], m, 0))))
                + (f"; thresholds tuned on dev ({args.tune_threshold})" if args.tune_threshold != "none" else "")
                + (f"; fine-tuned methods add `{args.recipe_args}`" if args.recipe_args else "")
                + "; embed_lr: frozen encoder + per-label logistic regression"
                + (f" (C={args.embed_lr_c})" if args.embed_lr_c else "") + ".")
    body = "\n\n".join([
        f"Command: `{command()}`  \nMachine: {machine()}  \n{settings}",
        "Test split, percent, mean ± sd over seeds (macro-F1 over all labels of the taxonomy, as HiAGM/HBGL/HPT):",
        markdown_table(["dataset", "method", "seeds", "micro-F1", "macro-F1", "hier-F1", "inconsistency",
                        "macro-F1 per level", "train min"], rows),
    ])
    write_section(name, body)


if __name__ == "__main__":
    main()
