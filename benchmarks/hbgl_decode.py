#!/usr/bin/env python
"""HBGL decoding at scale: each level scored on its own labels (the default under ``loss_columns="level"``) against
the former computation (every label scored at every level, the level's columns kept), round-robin in one process on
one model, with a flat model's forward on the same batch as the yardstick. Writes the "hbgl-decode" section of
BENCHMARKS.md.

    python benchmarks/hbgl_decode.py --depths 4 7

A depth K is ICD-10-CM cut at depth K (examples/data/build_icd10cm_scale.py, built on demand as in scale.py).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

import torch
from common import command, load_now, machine, markdown_table, write_section
from scale import build, dataset_dir
from speed import batch as text_batch
from speed import timed_together

from htc_tools.taxonomy import load_taxonomy


@contextlib.contextmanager
def all_columns(model: torch.nn.Module) -> Iterator[None]:
    """The former decode: ``loss_columns="all"``'s path with each step's candidates set back to its own level."""
    indices = model._indices()
    column_mask = indices["column_mask"].clone()
    model.config.loss_columns = "all"
    indices["column_mask"][: model.depth, 1:] = indices["level_mask"]
    try:
        yield
    finally:
        model.config.loss_columns = "level"
        indices["column_mask"].copy_(column_mask)


def measure(depth: str, repeats: int) -> list[str]:
    """One table row: the three timings at ICD-10-CM depth ``depth``."""
    taxonomy = load_taxonomy(dataset_dir(depth) / "taxonomy.json")
    hbgl, flat = build("hbgl", taxonomy).eval(), build("flat", taxonomy).eval()
    ids, mask, _ = text_batch(taxonomy, 32, 128, seed=1)
    outputs = {}

    def per_level() -> None:
        outputs["per level"] = hbgl.decode(ids, mask)

    def every_label() -> None:
        with all_columns(hbgl):
            outputs["every label"] = hbgl.decode(ids, mask)

    def flat_forward() -> None:
        with torch.no_grad():
            _ = torch.sigmoid(flat(input_ids=ids, attention_mask=mask).logits) > 0.5

    median = timed_together({"per level": per_level, "every label": every_label, "flat forward": flat_forward},
                            repeats)
    # the two sum the fed label embeddings in another order (float rounding): report where the selections differ
    new, old = outputs["per level"], outputs["every label"]
    differ = new.selected != old.selected
    closest = f"{new.logits[differ].abs().max():.1e}" if differ.any() else "-"
    return [f"{taxonomy.num_labels:,}", str(hbgl.depth), f"{median['per level']:.2f}", f"{median['every label']:.2f}",
            f"{median['flat forward']:.2f}", f"{median['every label'] / median['per level']:.2f}",
            f"{median['per level'] / median['flat forward']:.2f}",
            f"{int(differ.sum())} of {differ.numel():,}", f"{(new.logits - old.logits).abs().max():.1e}", closest]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depths", nargs="+", default=["4", "7"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    load_start = load_now()
    rows = []
    for depth in args.depths:
        rows.append(measure(depth, args.repeats))
        print(rows[-1], flush=True)
    load_end = load_now()
    body = "\n".join([
        "## HBGL decoding at scale: each level scored on its own labels", "",
        f"Command: `{command()}`  ", f"Machine: {machine()}  ",
        f"Load average (1/5/15 min) at start {load_start}, at end {load_end} (shared machine).  ",
        "One batch of 32 texts of length 128, embedded MiniLM, cached decoding; median of the timed runs, round-robin "
        "in one process. The untrained label head fires on many labels, so the fed sums are large: the two decodes "
        "add them in another order, their scores differ by float rounding (max |diff|), and a selection can differ "
        "where a score is that close to the threshold (max |score| among the differing entries).", "",
        markdown_table(["labels", "levels", "per level (s)", "every label at every level (s)", "flat forward (s)",
                        "speed-up", "per level x flat", "selections differing", "max |diff| of scores",
                        "max |score| where they differ"], rows),
    ])
    write_section("hbgl-decode", body)
    print(body)


if __name__ == "__main__":
    main()
