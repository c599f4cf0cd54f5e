"""RCV1-v2 -> the standard 20,833 / 2,316 / 781,265 split (HGCLR ``data_rcv1.py``, reference-notes §4.3).

Raw input: ``rcv1.tar.xz`` (or its extracted folder) of ``<date>/<itemid>newsML.xml`` files, the
RCV1-v2 id list (``rcv1v2-ids.dat[.gz]``), the topic qrels (``rcv1-v2.topics.qrels[.gz]``), the
LYRL2004 training token file with ``.I <id>`` lines (``lyrl2004_tokens_train.dat[.gz]``; not the
vectors file) and ``rcv1.taxonomy``. Text = every ``<p>`` concatenated with no separator. Train = the
LYRL2004 train ids, test = every other RCV1-v2 id; validation =
``train_test_split(train, test_size=0.1, random_state=0)``. Documents are taken in ascending id order.
"""

from __future__ import annotations

import gzip
import re
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from ..taxonomy import load_taxonomy
from .common import close_labels, sklearn_train_test_split, write_dataset_dir


def _open_text(path: str | Path) -> Iterator[str]:
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        yield from f


def read_ids(path: str | Path) -> list[int]:
    return [int(line.split()[0]) for line in _open_text(path) if line.strip()]


def read_lyrl_train_ids(path: str | Path) -> list[int]:
    ids = [int(line.split()[1]) for line in _open_text(path) if line.startswith(".I ")]
    if not ids:
        raise ValueError(f"{path}: no '.I <id>' lines; pass lyrl2004_tokens_train.dat, not the vectors file")
    return ids


def read_qrels(path: str | Path) -> dict[int, list[str]]:
    topics: dict[int, list[str]] = {}
    for line in _open_text(path):
        if line.strip():
            code, doc_id = line.split()[:2]
            topics.setdefault(int(doc_id), []).append(code)
    return topics


def parse_rcv1_xml(xml: bytes | str) -> tuple[int, str]:
    root = ET.fromstring(xml)
    return int(root.get("itemid")), "".join(p.text or "" for p in root.iter("p"))


def iter_corpus(raw: str | Path) -> Iterator[bytes]:
    raw = Path(raw)
    if raw.is_dir():
        for path in sorted(raw.rglob("*.xml")):
            yield path.read_bytes()
        return
    with tarfile.open(raw) as tar:
        for member in tar:
            if member.isfile() and re.search(r"\.xml$", member.name):
                yield tar.extractfile(member).read()


def prepare_rcv1(raw: str | Path, ids_file: str | Path, qrels_file: str | Path, lyrl_train_file: str | Path,
                 taxonomy_file: str | Path, out_dir: str | Path, split_seed: int = 0) -> Path:
    taxonomy = load_taxonomy(taxonomy_file)
    v2_ids = set(read_ids(ids_file))
    topics = read_qrels(qrels_file)
    train_ids = set(read_lyrl_train_ids(lyrl_train_file))
    texts = {}
    for xml in iter_corpus(raw):
        doc_id, text = parse_rcv1_xml(xml)
        if doc_id in v2_ids:
            texts[doc_id] = text
    missing = v2_ids - texts.keys()
    if missing:
        raise FileNotFoundError(f"{len(missing)} RCV1-v2 documents are not in {raw}, e.g. {sorted(missing)[:3]}")

    def record(doc_id: int) -> dict:
        codes = [c for c in topics.get(doc_id, []) if c in taxonomy]
        return {"text": texts[doc_id], "labels": close_labels(codes, taxonomy)}

    ordered = sorted(v2_ids)
    train_all = [record(i) for i in ordered if i in train_ids]
    train, dev = sklearn_train_test_split(train_all, test_size=0.1, random_state=split_seed)
    test = [record(i) for i in ordered if i not in train_ids]
    return write_dataset_dir(out_dir, {"train": train, "dev": dev, "test": test}, taxonomy,
                             {"dataset": "rcv1", "input": str(raw)})
