"""NYT (LDC2008T19) -> the standard 23,345 / 5,834 / 7,292 split (HGCLR ``data_nyt.py``, reference-notes §4.2).

Raw input: the corpus folder (``data/<year>/<month>.tgz`` or extracted ``<year>/**/<id>.xml``), the
split id lists (``Nytimes/<year>/<id>.xml`` a line, as shipped by HiAGM) and ``nyt.taxonomy``.
Text = every ``<p>`` of the full text except the first (it repeats the lead), concatenated with no
separator [QUIRK, kept]. Labels = every prefix (without ``Top``) of each taxonomic classifier path of
three or more components that is in the taxonomy.
"""

from __future__ import annotations

import re
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from ..taxonomy import Taxonomy, load_taxonomy
from .common import close_labels, write_dataset_dir

_YEAR = re.compile(r"^(1[89]|20)\d\d$")


def parse_nyt_xml(xml: bytes | str, taxonomy: Taxonomy) -> dict:
    """``{"text", "labels"}`` of one NYT xml document."""
    root = ET.fromstring(xml)
    paragraphs = [p.text or "" for block in root.iter("block") if block.get("class") == "full_text"
                  for p in block.iter("p")]
    text = "".join(paragraphs[1:])
    labels: list[str] = []
    for c in root.iter("classifier"):
        if c.get("type") != "taxonomic_classifier" or not c.text:
            continue
        parts = c.text.strip().split("/")
        if len(parts) < 3:
            continue
        for k in range(2, len(parts) + 1):
            prefix = "/".join(parts[:k])
            if prefix in taxonomy and prefix not in labels:
                labels.append(prefix)
    return {"text": text, "labels": close_labels(labels, taxonomy) if labels else []}


def iter_corpus(raw_dir: str | Path) -> Iterator[tuple[str, bytes]]:
    """``("<year>/<basename>", xml bytes)`` for every document under ``raw_dir`` (xml files or month tgz)."""
    for path in sorted(Path(raw_dir).rglob("*")):
        year = next((part for part in reversed(path.parts[:-1]) if _YEAR.match(part)), None)
        if path.suffix == ".xml" and year:
            yield f"{year}/{path.name}", path.read_bytes()
        elif path.name.endswith((".tgz", ".tar.gz")) and year:
            with tarfile.open(path) as tar:
                for member in tar:
                    if member.isfile() and member.name.endswith(".xml"):
                        yield f"{year}/{Path(member.name).name}", tar.extractfile(member).read()


def read_id_list(path: str | Path) -> list[str]:
    """``Nytimes/<year>/<id>.xml`` lines -> ``<year>/<id>.xml`` keys."""
    keys = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            parts = line.strip().split("/")
            keys.append("/".join(parts[-2:]))
    return keys


def prepare_nyt(raw_dir: str | Path, ids_dir: str | Path, taxonomy_file: str | Path, out_dir: str | Path) -> Path:
    taxonomy = load_taxonomy(taxonomy_file)
    ids_dir = Path(ids_dir)
    wanted = {split: read_id_list(ids_dir / f"{name}.txt")
              for split, name in (("train", "train"), ("dev", "val"), ("test", "test"))}
    needed = {key for keys in wanted.values() for key in keys}
    docs = {key: parse_nyt_xml(xml, taxonomy) for key, xml in iter_corpus(raw_dir) if key in needed}
    missing = sorted(needed - docs.keys())
    if missing:
        raise FileNotFoundError(f"{len(missing)} NYT documents of the split lists are not under {raw_dir}, "
                                f"e.g. {missing[:3]}")
    splits = {split: [docs[k] for k in keys] for split, keys in wanted.items()}
    return write_dataset_dir(out_dir, splits, taxonomy, {"dataset": "nyt", "input": str(raw_dir)})
