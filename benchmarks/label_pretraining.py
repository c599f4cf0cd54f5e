#!/usr/bin/env python
"""HBGL label pre-training step: the edge-list attention (``cpt_attention="edges"``, default) against the dense
masked encoder path (``"dense"``, the computation before issue 15), and a flat fine-tuning step, measured
round-robin in one process so that outside load falls on all alike (ratios), plus each path's peak RSS in a child
process of its own. ``edges, bf16`` is the edge-list step under ``torch.autocast("cpu", torch.bfloat16)``, what
the Trainer applies for ``--bf16`` (the flat step is timed both ways too). Writes the "label-pretraining" section
of BENCHMARKS.md.

    python benchmarks/label_pretraining.py --dataset_dir examples/data/scale/icd10cm_depth2 --batch_size 32
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from common import command, load_now, machine, markdown_table, write_section

from hbgl_hf import HBGLForHierarchicalClassification, LabelGraphPretrainer
from hbgl_hf.label_pretraining import stage_rows
from htc_tools.memory import bound_onednn_caches
from htc_tools.taxonomy import Taxonomy, load_taxonomy
from htc_tools.training import resolve_model_path


def stage_step(model: HBGLForHierarchicalClassification, attention: str, batch_size: int):
    model.config.cpt_attention = attention
    stage = LabelGraphPretrainer(model).train()
    optimizer = torch.optim.AdamW([stage.label_embeddings], lr=1e-3, weight_decay=0.0)
    rows = stage_rows(100, batch_size, 0)
    # steps 45-54 of the 100-step schedule, again and again (masking ratio 0.29-0.31, about the schedule's mean 0.30):
    # the edge-list step computes what the masked slots need, so its cost grows with the ratio
    counter = itertools.cycle(range(45, 55))

    def step() -> None:
        i = next(counter)
        batch = slice(i * batch_size, (i + 1) * batch_size)
        stage.model.config.cpt_attention = attention
        stage(torch.tensor(rows["progress"][batch]), torch.tensor(rows["mask_seed"][batch]))["loss"].backward()
        optimizer.step()
        optimizer.zero_grad()

    return step


def in_bf16(step):
    """``step`` under the CPU bf16 autocast the Trainer uses for ``--bf16``."""
    def autocast_step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            step()

    return autocast_step


def level_order_cut(taxonomy: Taxonomy, num_labels: int | None) -> Taxonomy:
    """The first ``num_labels`` labels by (level, id): every kept label's parents are kept (they sit a level up)."""
    if not num_labels or num_labels >= taxonomy.num_labels:
        return taxonomy
    kept = sorted(range(taxonomy.num_labels), key=lambda i: (taxonomy.levels[i], i))[:num_labels]
    new_id = {old: new for new, old in enumerate(kept)}
    return Taxonomy.from_parents([taxonomy.labels[i] for i in kept],
                                 [[new_id[p] for p in taxonomy.parents[i]] for i in kept])


VARIANTS = {"edges": ("edges", False), "edges, bf16": ("edges", True), "dense": ("dense", False)}


def flat_step(num_labels: int, batch_size: int, length: int):
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(resolve_model_path("embedded-minilm"), num_labels=num_labels,
                                                          problem_type="multi_label_classification").train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    ids = torch.randint(1000, 30000, (batch_size, length))
    labels = (torch.rand(batch_size, num_labels) < 0.02).float()

    def step() -> None:
        model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset_dir", type=Path, required=True)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num_labels", type=int, default=None,
                        help="keep the first N labels in level order (an ancestor-closed cut, e.g. issue 15's 366)")
    parser.add_argument("--child", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    bound_onednn_caches()  # as the training script does, before the first oneDNN kernel (htc_tools/memory.py)
    taxonomy = level_order_cut(load_taxonomy(args.dataset_dir / "taxonomy.json"), args.num_labels)
    model = HBGLForHierarchicalClassification.from_encoder(
        resolve_model_path("embedded-minilm"), list(taxonomy.labels), [list(p) for p in taxonomy.parents])
    if args.child:  # two steps, then this process's peak RSS
        attention, bf16 = VARIANTS[args.child]
        step = stage_step(model, attention, args.batch_size)
        step = in_bf16(step) if bf16 else step
        for _ in range(2):
            step()
        with open("/proc/self/status") as f:  # VmHWM: reset at exec (ru_maxrss is inherited from the parent)
            peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 2**20
        print(json.dumps({"peak_gib": peak}))
        return
    load_start = load_now()
    fns = {name: in_bf16(stage_step(model, attention, args.batch_size)) if bf16 else
           stage_step(model, attention, args.batch_size) for name, (attention, bf16) in VARIANTS.items()}
    flat_name = "flat fine-tune (batch 16 x 128)"
    fns[flat_name] = flat_step(taxonomy.num_labels, 16, 128)
    fns[flat_name + ", bf16"] = in_bf16(flat_step(taxonomy.num_labels, 16, 128))
    wall: dict[str, list[float]] = {n: [] for n in fns}
    cpu: dict[str, list[float]] = {n: [] for n in fns}
    for fn in fns.values():
        fn()  # warm-up
    for r in range(args.repeats):
        names = list(fns)
        for name in names[r % len(names):] + names[: r % len(names)]:
            start, start_cpu = time.perf_counter(), time.process_time()
            fns[name]()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    load_end = load_now()
    peaks = {}
    for variant in VARIANTS:
        cut = ["--num_labels", str(args.num_labels)] if args.num_labels else []
        done = subprocess.run([sys.executable, __file__, "--dataset_dir", str(args.dataset_dir), "--batch_size",
                               str(args.batch_size), "--child", variant, *cut], capture_output=True, text=True)
        ok = done.returncode == 0
        peaks[variant] = json.loads(done.stdout.strip().splitlines()[-1])["peak_gib"] if ok else None
    flat = statistics.median(wall[flat_name])
    rows = []
    for name in fns:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        peak = peaks.get(name)
        rows.append([name, f"{w:.2f}", f"{c:.2f}", f"{w / flat:.2f}", f"{100 * w:.0f}" if name in peaks else "",
                     f"{peak:.2f}" if peak else ""])
    body = "\n".join([
        f"## HBGL label pre-training: {taxonomy.num_labels} labels, batch {args.batch_size}", "",
        f"Command: `{command()}`  ", f"Machine: {machine()}  ",
        f"Load average (1/5/15 min) at start {load_start}, at end {load_end} (shared machine).  ",
        "Median of the timed steps (from the middle of a 100-step schedule: masking ratio about 0.3, the schedule's "
        "mean), measured round-robin in one process; CPU = process CPU seconds (all threads); "
        "peak RSS: a child process building the model and running two stage steps.", "",
        markdown_table(["step", "wall (s)", "CPU (s)", "x flat step", "100 steps (s, projected)",
                        "peak RSS (GiB)"], rows),
    ])
    write_section("label-pretraining", body)
    print(body)


if __name__ == "__main__":
    main()
