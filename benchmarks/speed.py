#!/usr/bin/env python
"""Inference and training-step speed of HBGL (cached and uncached decode), HPT and the flat baseline, measured
in one process and one run, reported as ratios to flat; plus peak memory of a training step (one child
process per model, so the peaks do not mix). Writes the "speed" section of BENCHMARKS.md.

    python benchmarks/speed.py --encoders minilm bert-base --taxonomies wos rcv1 nyt --lengths 128 256

``minilm``: the embedded all-MiniLM-L6-v2 (pretrained weights); ``bert-base``: a randomly initialised
bert-base-sized config (speed does not depend on the weights). Taxonomies from ../shared/taxonomies.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import threading
import time

import torch
from common import SHARED, command, machine, markdown_table, write_section
from transformers import BertConfig, BertForSequenceClassification

from hbgl_hf import HBGLConfig, HBGLForHierarchicalClassification
from hpt_hf import HPTConfig, HPTForHierarchicalClassification
from htc_tools.taxonomy import Taxonomy, load_taxonomy
from htc_tools.training import resolve_model_path

TAXONOMIES = {"wos": "raw/wos.taxonomy", "rcv1": "raw/rcv1.taxonomy", "nyt": "raw/nyt.taxonomy"}
METHODS = ("flat", "hbgl", "hpt")


def build(method: str, encoder: str, taxonomy: Taxonomy) -> torch.nn.Module:
    labels, parents = list(taxonomy.labels), [list(p) for p in taxonomy.parents]
    if encoder == "minilm":
        path = resolve_model_path("embedded-minilm")
        if method == "flat":
            return BertForSequenceClassification.from_pretrained(path, num_labels=len(labels),
                                                                 problem_type="multi_label_classification")
        cls = HBGLForHierarchicalClassification if method == "hbgl" else HPTForHierarchicalClassification
        return cls.from_encoder(path, labels, parents)
    base = BertConfig()  # bert-base-uncased sizes, random weights
    if method == "flat":
        return BertForSequenceClassification(BertConfig(num_labels=len(labels),
                                                        problem_type="multi_label_classification"))
    common = {"id2label": dict(enumerate(labels)), "label_parents": parents, "label_token_offset": base.vocab_size}
    if method == "hbgl":
        return HBGLForHierarchicalClassification(HBGLConfig(vocab_size=base.vocab_size + len(labels), **common))
    extra = len(labels) + taxonomy.depth + 1
    return HPTForHierarchicalClassification(HPTConfig(vocab_size=base.vocab_size + extra, **common))


def batch(taxonomy: Taxonomy, size: int, length: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 30000, (size, length), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    labels = torch.zeros(size, taxonomy.num_labels)
    for row, label in enumerate(torch.randint(taxonomy.num_labels, (size,), generator=g).tolist()):
        labels[row, sorted(taxonomy.ancestor_closure([label]))] = 1
    return ids, torch.ones_like(ids), labels


def timed_together(fns: dict, repeats: int) -> dict[str, float]:
    """Median seconds per call of each function, measured round-robin (one warm-up each) so that load from
    outside the process falls on all of them alike and the ratios stay meaningful on a shared machine."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def inference_fns(models: dict, ids: torch.Tensor, mask: torch.Tensor) -> dict:
    return {
        "flat": lambda: models["flat"](input_ids=ids, attention_mask=mask).logits,
        "hbgl_cached": lambda: models["hbgl"].decode(ids, mask, use_cache=True),
        "hbgl_uncached": lambda: models["hbgl"].decode(ids, mask, use_cache=False),
        "hpt": lambda: models["hpt"].decode(ids, mask),
    }


def train_step_fn(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def step() -> None:
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def rss_gib() -> float:
    """This process's resident memory now (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**30


class RssPeak(threading.Thread):
    """Polls the resident memory every millisecond and keeps the highest reading (CPU peak of a code span)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self.running = rss_gib(), True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_gib())
            time.sleep(0.001)


def child_peak_memory(args: argparse.Namespace) -> None:
    """Build one model, run training steps, print the memory they take on top of the loaded model and data:
    the GPU allocator's peak, or on CPU the polled peak RSS minus the RSS before the first step."""
    taxonomy = load_taxonomy(SHARED / "taxonomies" / TAXONOMIES[args.taxonomies[0]])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build(args.child, args.encoders[0], taxonomy).to(device).train()
    ids, mask, labels = (t.to(device) for t in batch(taxonomy, args.batch_size, args.lengths[0]))
    step = train_step_fn(model, ids, mask, labels)
    if device == "cuda":
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        monitor = RssPeak()
        base = monitor.peak
        monitor.start()
    for _ in range(2):
        step()
    if device == "cuda":
        peak = (torch.cuda.max_memory_allocated() - base) / 2**30
    else:
        monitor.running = False
        monitor.join()
        peak = monitor.peak - base
    print(json.dumps({"peak_gib": peak}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoders", nargs="+", default=["minilm", "bert-base"], choices=["minilm", "bert-base"])
    parser.add_argument("--taxonomies", nargs="+", default=list(TAXONOMIES), choices=list(TAXONOMIES))
    parser.add_argument("--lengths", nargs="+", type=int, default=[128, 256])
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train_repeats", type=int, default=2)
    parser.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_peak_memory(args)
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    inference_rows, train_rows, memory_rows = [], [], []
    for encoder in args.encoders:
        for name in args.taxonomies:
            taxonomy = load_taxonomy(SHARED / "taxonomies" / TAXONOMIES[name])
            models = {m: build(m, encoder, taxonomy).to(device) for m in METHODS}
            for length in args.lengths:
                ids, mask, labels = (t.to(device) for t in batch(taxonomy, args.batch_size, length))
                for model in models.values():
                    model.eval()
                with torch.inference_mode():
                    seconds = timed_together({k: lambda f=f: (f(), sync())
                                              for k, f in inference_fns(models, ids, mask).items()}, args.repeats)
                flat = seconds["flat"]
                inference_rows.append([encoder, f"{name} (depth {taxonomy.depth})", length, f"{flat * 1e3:.0f}",
                                       f"{seconds['hbgl_cached'] / flat:.2f}",
                                       f"{seconds['hbgl_uncached'] / flat:.2f}",
                                       f"{seconds['hbgl_cached'] / seconds['hbgl_uncached']:.2f}",
                                       f"{seconds['hpt'] / flat:.2f}"])
                print(inference_rows[-1], flush=True)
                if length == args.lengths[0]:
                    for model in models.values():
                        model.train()
                    steps = {m: train_step_fn(model, ids, mask, labels) for m, model in models.items()}
                    step_seconds = timed_together({m: lambda s=s: (s(), sync()) for m, s in steps.items()},
                                                  args.train_repeats)
                    flat_step = step_seconds["flat"]
                    train_rows.append([encoder, f"{name} (depth {taxonomy.depth})", length,
                                       f"{flat_step * 1e3:.0f}", f"{step_seconds['hbgl'] / flat_step:.2f}",
                                       f"{step_seconds['hpt'] / flat_step:.2f}"])
                    print(train_rows[-1], flush=True)
            del models
        name = args.taxonomies[-1]
        peaks = {}
        for method in METHODS:
            out = subprocess.run([sys.executable, __file__, "--child", method, "--encoders", encoder, "--taxonomies",
                                  name, "--lengths", str(args.lengths[0]), "--batch_size", str(args.batch_size)],
                                 capture_output=True, text=True, check=True)
            peaks[method] = json.loads(out.stdout.strip().splitlines()[-1])["peak_gib"]
        memory_rows.append([encoder, name, args.lengths[0], f"{peaks['flat']:.2f}",
                            f"{peaks['hbgl'] / peaks['flat']:.2f}", f"{peaks['hpt'] / peaks['flat']:.2f}"])
        print(memory_rows[-1], flush=True)
    kind = ("GPU allocator" if device == "cuda" else "process RSS polled every ms") + \
        ": peak during 2 training steps minus the loaded model and batch, i.e. activations, gradients, AdamW state"
    body = "\n\n".join([
        f"Command: `{command()}`  \nMachine: {machine()}  \nBatch {args.batch_size}; median of {args.repeats} "
        f"inference / {args.train_repeats} training repeats after one warm-up, the models measured round-robin; "
        "ratios are to flat in the same run.",
        "**Inference time per batch** (flat in ms; the others as multiples of flat)",
        markdown_table(["encoder", "taxonomy", "length", "flat ms", "HBGL cached", "HBGL uncached",
                        "cached / uncached", "HPT"], inference_rows),
        "**Training step** (forward + backward + AdamW step)",
        markdown_table(["encoder", "taxonomy", "length", "flat ms", "HBGL", "HPT"], train_rows),
        f"**Peak memory of a training step** ({kind}; flat in GiB, the others as multiples)",
        markdown_table(["encoder", "taxonomy", "length", "flat GiB", "HBGL", "HPT"], memory_rows),
    ])
    write_section(f"speed-{device}-{'-'.join(args.encoders)}", body)


if __name__ == "__main__":
    main()
