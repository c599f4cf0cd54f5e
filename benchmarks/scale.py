#!/usr/bin/env python
"""Scale: flat, HBGL and HPT on ICD-10-CM cut at growing depth (about 100, 2k, 12k and 98.5k labels), embedded
MiniLM. Per point and model, one child process (a clean peak RSS): construction time, a training step (batch 8,
length 128: time, peak RSS), decoding a batch of 32 (time, peak RSS); HBGL's label pre-training step in a process of
its own (batch ``--pretrain_batch``, its time and peak RSS); metrics over 1,000 texts per point. Writes
benchmarks/results/scale.json, benchmarks/results/scale.png and the "scale" section of BENCHMARKS.md.

    pip install ".[scale]"   # simple-icd-10-cm, matplotlib
    python benchmarks/scale.py --depths demo 3 4 7

``demo`` is the shipped examples/data/icd10cm (108 labels); a number K is the cut at depth K, built on demand
with examples/data/build_icd10cm_scale.py into the ignored examples/data/scale/.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import REPO, command, load_now, machine, markdown_table, write_section
from speed import batch as text_batch

from htc_tools.memory import bound_onednn_caches

RESULTS = REPO / "benchmarks" / "results"
METHODS = ("flat", "hbgl", "hpt")


def dataset_dir(depth: str) -> Path:
    if depth == "demo":
        return REPO / "examples" / "data" / "icd10cm"
    out = REPO / "examples" / "data" / "scale" / f"icd10cm_depth{depth}"
    if not (out / "taxonomy.json").exists():
        subprocess.run([sys.executable, str(REPO / "examples" / "data" / "build_icd10cm_scale.py"), "--depth", depth,
                        "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    return out


def peak_gib() -> float:
    """This process's peak RSS (VmHWM: reset at exec, unlike ru_maxrss, which a child inherits from its parent)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 2**20


def build(method: str, taxonomy: object) -> torch.nn.Module:
    from transformers import BertForSequenceClassification

    from hbgl_hf import HBGLForHierarchicalClassification
    from hpt_hf import HPTForHierarchicalClassification
    from htc_tools.training import resolve_model_path

    path = resolve_model_path("embedded-minilm")
    labels, parents = list(taxonomy.labels), [list(p) for p in taxonomy.parents]
    if method == "flat":
        return BertForSequenceClassification.from_pretrained(path, num_labels=len(labels),
                                                             problem_type="multi_label_classification")
    cls = HBGLForHierarchicalClassification if method == "hbgl" else HPTForHierarchicalClassification
    return cls.from_encoder(path, labels, parents)


def child_model(args: argparse.Namespace) -> dict:
    """Construction, one training step (after one warm-up step), one decode of a batch of 32."""
    from htc_tools.taxonomy import load_taxonomy

    torch.manual_seed(0)
    taxonomy = load_taxonomy(dataset_dir(args.depth) / "taxonomy.json")
    out = {"labels": taxonomy.num_labels}
    start = time.perf_counter()
    model = build(args.child, taxonomy)
    out["build_s"] = time.perf_counter() - start
    out["build_peak_gib"] = peak_gib()
    model.train()
    ids, mask, labels = text_batch(taxonomy, 8, 128)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    times = []
    for _ in range(2):
        start = time.perf_counter()
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    out["train_step_s"], out["train_peak_gib"] = times[-1], peak_gib()
    del optimizer
    model.eval()
    ids, mask, _ = text_batch(taxonomy, 32, 128, seed=1)
    start = time.perf_counter()
    with torch.no_grad():
        if args.child == "flat":
            _ = torch.sigmoid(model(input_ids=ids, attention_mask=mask).logits) > 0.5
        else:
            model.decode(ids, mask)
    out["decode32_s"], out["decode_peak_gib"] = time.perf_counter() - start, peak_gib()
    return out


def child_pretrain(args: argparse.Namespace) -> dict:
    """HBGL label pre-training: two steps at ``--pretrain_batch`` (the second timed) and the process peak."""
    from hbgl_hf import LabelGraphPretrainer
    from hbgl_hf.label_pretraining import stage_rows
    from htc_tools.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(dataset_dir(args.depth) / "taxonomy.json")
    model = build("hbgl", taxonomy)
    stage = LabelGraphPretrainer(model).train()
    optimizer = torch.optim.AdamW([stage.label_embeddings], lr=1e-3, weight_decay=0.0)
    rows = stage_rows(2, args.pretrain_batch, 0)
    times = []
    for step in range(2):
        batch = slice(step * args.pretrain_batch, (step + 1) * args.pretrain_batch)
        start = time.perf_counter()
        stage(torch.tensor(rows["progress"][batch]), torch.tensor(rows["mask_seed"][batch]))["loss"].backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return {"pretrain_step_s": times[-1], "pretrain_peak_gib": peak_gib(), "sequence_labels": stage.sequence_labels}


def metrics_time(depth: str) -> float:
    """Seconds of ``hierarchical_metrics`` over 1,000 texts (gold: a random path each; predictions: 3 random paths)."""
    from htc_tools.metrics import hierarchical_metrics
    from htc_tools.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(dataset_dir(depth) / "taxonomy.json")
    rng = np.random.default_rng(0)
    gold = np.zeros((1000, taxonomy.num_labels), dtype=bool)
    pred = np.zeros_like(gold)
    for row in range(1000):
        gold[row, sorted(taxonomy.ancestor_closure([int(rng.integers(taxonomy.num_labels))]))] = True
        pred[row, rng.integers(taxonomy.num_labels, size=3)] = True
    hierarchical_metrics(gold, pred, taxonomy)  # warm-up: the taxonomy's cached properties
    start = time.perf_counter()
    hierarchical_metrics(gold, pred, taxonomy)
    return time.perf_counter() - start


def run_child(args: argparse.Namespace, depth: str, child: str) -> dict:
    cmd = [sys.executable, __file__, "--child", child, "--depths", depth, "--pretrain_batch", str(args.pretrain_batch)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-1][:200]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("train_step_s", "train step (s, batch 8 x 128)"), ("train_peak_gib", "train peak RSS (GiB)"),
              ("decode32_s", "decode 32 texts (s)"), ("build_s", "construction (s)")]
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(4 * (len(panels) + 1), 3.4))
    for ax, (key, title) in zip(axes, panels, strict=False):
        for method in METHODS:
            pts = [(r["labels"], r[method][key]) for r in results["points"] if key in r.get(method, {})]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=method)
        ax.set(xscale="log", yscale="log", title=title, xlabel="labels")
    pts = [(r["labels"], r["hbgl_pretrain"]["pretrain_step_s"]) for r in results["points"]
           if "pretrain_step_s" in r.get("hbgl_pretrain", {})]
    if pts:
        axes[-1].plot(*zip(*pts, strict=True), marker="o", color="C1", label="HBGL label pre-training")
    pts = [(r["labels"], r["metrics_1000_s"]) for r in results["points"]]
    axes[-1].plot(*zip(*pts, strict=True), marker="s", color="k", label="metrics / 1,000 texts")
    axes[-1].set(xscale="log", yscale="log", title="pre-training step, metrics (s)", xlabel="labels")
    axes[-1].legend(fontsize=7)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def growth(points: list[tuple[float, float]]) -> str:
    """Slope of log(y) on log(x) between the last two points: ~0 flat, ~1 linear, ~2 quadratic."""
    if len(points) < 2 or points[-2][1] <= 0:
        return "n/a"
    (x0, y0), (x1, y1) = points[-2], points[-1]
    return f"{np.log(y1 / y0) / np.log(x1 / x0):.2f}"


def report(results: dict) -> str:
    rows = []
    for r in results["points"]:
        for method in METHODS:
            m = r.get(method, {})
            if "error" in m:
                rows.append([r["labels"], method, f"failed: {m['error']}", "", "", "", "", "", ""])
                continue
            pre = r.get("hbgl_pretrain", {}) if method == "hbgl" else {}
            rows.append([f"{r['labels']:,}", method, f"{m['build_s']:.1f}",
                         f"{pre['pretrain_step_s']:.1f}" if "pretrain_step_s" in pre else "",
                         f"{pre['pretrain_peak_gib']:.2f}" if "pretrain_peak_gib" in pre else "",
                         f"{m['train_step_s']:.2f}", f"{m['train_peak_gib']:.2f}", f"{m['decode32_s']:.2f}",
                         f"{r['metrics_1000_s']:.3f}"])
    table = markdown_table(["labels", "model", "build (s)", "pre-train step (s)", "pre-train peak (GiB)",
                            "train step (s)", "train peak RSS (GiB)", "decode 32 (s)", "metrics / 1k texts (s)"],
                           rows)
    slopes = []
    for method in METHODS:
        for key in ("train_step_s", "train_peak_gib", "decode32_s"):
            pts = [(r["labels"], r[method][key]) for r in results["points"] if key in r.get(method, {})]
            slopes.append(f"{method} {key}: {growth(pts)}")
    return "\n".join([
        "## Scale: 100 to 98.5k labels (ICD-10-CM)", "",
        f"Command: `{results['command']}`  ", f"Machine: {results['machine']}  ",
        f"Load average (1/5/15 min) at start {results['load_start']}, at end {results['load_end']} (a shared 2-core "
        "machine: absolute times carry that load; the ratios between models in one row are the robust part).  ",
        f"Each (labels, model) point runs in its own process; peak RSS is the process's maximum (including Python, "
        f"torch and the encoder). Train step: batch 8, length 128, AdamW, second of two steps. Decode: one batch of "
        f"32 texts of length 128. HBGL pre-training: batch {results['pretrain_batch']}, sequences of at most "
        "`cpt_max_labels` = 512 labels (sampled sub-graphs above that).", "",
        table, "",
        "![scale](benchmarks/results/scale.png)", "",
        "Growth exponents (slope of log time / log memory against log labels between the two largest points; "
        "~0 flat, ~1 linear, ~2 quadratic): " + "; ".join(slopes) + ".",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depths", nargs="+", default=["demo", "3", "4", "7"])
    parser.add_argument("--pretrain_batch", type=int, default=8)
    parser.add_argument("--timeout", type=int, default=1800)
    parser.add_argument("--child", choices=[*METHODS, "pretrain"], help=argparse.SUPPRESS)
    parser.add_argument("--no_write", action="store_true", help="print the results, leave BENCHMARKS.md alone")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    bound_onednn_caches()  # as the training script does, before the first oneDNN kernel (htc_tools/memory.py)
    if args.child:
        args.depth = args.depths[0]
        result = child_pretrain(args) if args.child == "pretrain" else child_model(args)
        print(json.dumps(result))
        return
    results = {"command": command(), "machine": machine(), "load_start": load_now(),
               "pretrain_batch": args.pretrain_batch, "points": []}
    for depth in args.depths:
        dataset_dir(depth)
        point = {"depth": depth, "metrics_1000_s": metrics_time(depth)}
        for method in METHODS:
            point[method] = run_child(args, depth, method)
            print(depth, method, point[method], flush=True)
        point["hbgl_pretrain"] = run_child(args, depth, "pretrain")
        print(depth, "pretrain", point["hbgl_pretrain"], flush=True)
        point["labels"] = next((point[m]["labels"] for m in METHODS if "labels" in point[m]), 0)
        results["points"].append(point)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "scale.json").write_text(json.dumps(results, indent=1) + "\n")
    results["load_end"] = load_now()
    (RESULTS / "scale.json").write_text(json.dumps(results, indent=1) + "\n")
    plot(results, RESULTS / "scale.png")
    if not args.no_write:
        write_section("scale", report(results))
    print(report(results))


if __name__ == "__main__":
    main()
