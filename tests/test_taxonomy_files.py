"""Taxonomy files a user may hand in by mistake: a byte-order mark, another encoding, pairs written with
spaces, a misspelled parent (issue #16, item 6)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from htc_tools.taxonomy import TaxonomyError, _one_edit_apart, load_taxonomy

TREE = {"Root": ["Science", "Arts"], "Science": ["Physics", "Biology"], "Arts": ["Music"]}


def _write(tmp_path: Path, content: str | bytes, name: str = "tax.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


@pytest.mark.parametrize(("content", "name"), [
    (json.dumps(TREE), "taxonomy.json"),
    ("Root\tScience\tArts\nScience\tPhysics\tBiology\nArts\tMusic\n", "hierarchy.txt"),
    ("Science\tPhysics\nScience\tBiology\nArts\tMusic\n", "hierarchy.txt"),
], ids=["json", "hiagm", "pairs"])
def test_a_utf8_byte_order_mark_is_ignored(tmp_path: Path, content: str, name: str) -> None:
    plain = load_taxonomy(_write(tmp_path, content, name))
    with_bom = load_taxonomy(_write(tmp_path, "\ufeff" + content, "bom-" + name))
    assert with_bom == plain and with_bom.num_labels == 5 and "Science" in with_bom


def test_a_non_utf8_file_is_named_with_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "Science\tPhysics\nArts\tMus\xe9e\n".encode("latin-1"), "latin1.txt")
    with pytest.raises(TaxonomyError, match=r"latin1\.txt: not UTF-8 text \(byte 0xe9 at line 2\)"):
        load_taxonomy(path)


def test_pairs_written_with_spaces_are_rejected_naming_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "\nScience Physics\nScience Biology\n")
    with pytest.raises(TaxonomyError, match=r"tax\.txt: line 2: 'Science Physics' has no tab"):
        load_taxonomy(path)


def test_one_pair_written_with_spaces_among_tab_pairs_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, "Science\tPhysics\nScience Biology\nArts\tMusic\n")
    with pytest.raises(TaxonomyError, match=r"line 2: 'Science Biology' has no tab but starts with the label "
                                            r"'Science' of line 1"):
        load_taxonomy(path)


def test_top_level_names_with_spaces_stay_accepted(tmp_path: Path) -> None:
    mixed = load_taxonomy(_write(tmp_path, "Natural Science\tPhysics\nFine Arts\nFine Arts\tMusic\n"))
    assert [mixed.labels[i] for i in mixed.top_level] == ["Natural Science", "Fine Arts"]
    escaped = load_taxonomy(_write(tmp_path, "Natural Science\t\nFine Arts\t\n", "flat.txt"))  # trailing tab
    assert escaped.labels == ("Natural Science", "Fine Arts")


def test_pairs_log_inferred_top_level_labels_and_warn_once_for_a_near_miss(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    path = _write(tmp_path, "Science\tPhysics\nScience\tBiology\nScinece\tChemistry\nArts\tMusic\n")
    with caplog.at_level(logging.INFO, logger="htc_tools.taxonomy"):
        taxonomy = load_taxonomy(path)
    assert [taxonomy.labels[i] for i in taxonomy.top_level] == ["Science", "Scinece", "Arts"]  # still loads
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert info == [f"{path}: 3 top-level label(s) inferred (parents that are never a child): "
                    "'Science', 'Scinece', 'Arts'"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"{path}: top-level label 'Scinece' (line 3) is one edit away from 'Science': a misspelled "
                        "parent? (it is a new top-level label)"]


def test_no_near_miss_warning_for_distinct_names(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="htc_tools.taxonomy"):
        load_taxonomy(_write(tmp_path, "Science\tPhysics\nArts\tMusic\nPhysics\tAtoms\nSport\n"))
    assert not caplog.records


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("Science", "Scince", True), ("Science", "Sciences", True), ("Science", "Sciance", True),
    ("Science", "Scinece", True), ("Science", "science", True), ("Science", "Science", False),
    ("Science", "Scenic", False), ("Arts", "Art", True), ("ab", "ba", True), ("abc", "cab", False),
])
def test_one_edit_apart(a: str, b: str, expected: bool) -> None:
    assert _one_edit_apart(a, b) is expected and _one_edit_apart(b, a) is expected
