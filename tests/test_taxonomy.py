from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import shared_taxonomy

from htc_tools.taxonomy import Taxonomy, TaxonomyError, load_taxonomy


@pytest.mark.parametrize(
    ("name", "num_labels", "per_level"),
    [
        ("raw/rcv1.taxonomy", 103, [4, 55, 43, 1]),
        ("raw/wos.taxonomy", 141, [7, 134]),
        ("raw/nyt.taxonomy", 166, [4, 27, 51, 47, 17, 12, 6, 2]),
        ("raw/bgc_hierarchy.txt", 152, [7, 52, 77, 16]),
        ("json/rcv1.taxonomy.json", 103, [4, 55, 43, 1]),
        ("json/nyt.taxonomy.json", 166, [4, 27, 51, 47, 17, 12, 6, 2]),
    ],
)
def test_real_taxonomies_load_with_published_counts(name: str, num_labels: int, per_level: list[int]) -> None:
    tax = load_taxonomy(shared_taxonomy(name))
    assert tax.num_labels == num_labels
    assert [len(ids) for ids in tax.labels_per_level] == per_level
    assert tax.depth == len(per_level)


def test_rcv1_structure_and_id_order() -> None:
    tax = load_taxonomy(shared_taxonomy("raw/rcv1.taxonomy"))
    assert tax.labels[:4] == ("CCAT", "ECAT", "GCAT", "MCAT")  # level 1 first, file order
    c1511 = tax.id("C1511")
    assert tax.levels[c1511] == 4
    assert [tax.labels[i] for i in sorted(tax.ancestors[c1511])] == ["CCAT", "C15", "C151"]
    assert [tax.labels[i] for i in tax.children[tax.id("C15")]] == ["C151", "C152"]
    assert tax.paths(c1511) == [[tax.id("CCAT"), tax.id("C15"), tax.id("C151"), c1511]]
    # each level is a contiguous id range
    for ids in tax.labels_per_level:
        assert list(ids) == list(range(ids[0], ids[-1] + 1))


def test_dbpedia_glued_line_is_rejected_naming_line_11() -> None:
    with pytest.raises(TaxonomyError, match=r"line 11.*GovernorMusicalWork"):
        load_taxonomy(shared_taxonomy("raw/dbpedia.taxonomy"))


def test_dag_keeps_every_parent_and_levels_are_longest_path(toy_taxonomy: Taxonomy) -> None:
    tax = toy_taxonomy
    biochem = tax.id("biochem")
    assert sorted(tax.labels[p] for p in tax.parents[biochem]) == ["biology", "chemistry"]
    assert tax.levels[biochem] == 3
    assert {tax.labels[i] for i in tax.ancestors[biochem]} == {"science", "chemistry", "biology"}
    assert len(tax.paths(biochem)) == 2
    assert tax.summary()["multi_parent_labels"] == ["biochem"]


def test_dag_level_is_below_the_deepest_parent() -> None:
    # "x" has a level-1 parent and a level-2 parent: it sits at level 3.
    tax = Taxonomy.from_dict({"Root": ["a", "b"], "a": ["c", "x"], "c": ["x"]})
    assert tax.levels[tax.id("x")] == 3
    assert tax.labels_per_level[2] == (tax.id("x"),)


def test_sibling_groups_and_json_round_trip(toy_taxonomy: Taxonomy) -> None:
    names = [[toy_taxonomy.labels[i] for i in g] for g in toy_taxonomy.sibling_groups]
    assert names[0] == ["sports", "science", "arts"]
    assert ["ball", "track"] in names and ["biochem", "genes"] in names
    again = Taxonomy.from_dict(toy_taxonomy.to_dict())
    assert again == toy_taxonomy


def test_from_parents_round_trip(toy_taxonomy: Taxonomy) -> None:
    again = Taxonomy.from_parents(toy_taxonomy.labels, toy_taxonomy.parents)
    assert again == toy_taxonomy


# ------------------------------------------------------------------ bad input, one test each
def _write(tmp_path: Path, text: str, name: str = "tax.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_cycle_is_rejected_naming_label_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "Root\tA\nA\tB\nB\tC\nC\tB\n")
    with pytest.raises(TaxonomyError, match=r"cycle through label '(B|C)' \(line [34]\)"):
        load_taxonomy(path)


def test_self_parent_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, "Root\tA\nA\tB\tA\n")
    with pytest.raises(TaxonomyError, match=r"label 'A' is its own parent \(line 2\)"):
        load_taxonomy(path)


def test_conflicting_duplicate_definition_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, "Root\tA\nA\tB\tC\nA\tB\tD\n")
    with pytest.raises(TaxonomyError, match=r"label 'A' is defined twice with different children \(lines 2 and 3\)"):
        load_taxonomy(path)


def test_identical_duplicate_definition_is_accepted(tmp_path: Path) -> None:
    tax = load_taxonomy(_write(tmp_path, "Root\tA\nA\tB\tC\nA\tB\tC\n"))
    assert tax.num_labels == 3


def test_conflicting_duplicate_json_key_is_rejected(tmp_path: Path) -> None:
    text = '{\n "Root": ["A"],\n "A": ["B"],\n "A": ["C"]\n}\n'
    path = _write(tmp_path, text, "tax.json")
    with pytest.raises(TaxonomyError, match=r"label 'A' is defined twice with different children \(line 4\)"):
        load_taxonomy(path)


def test_child_listed_twice_under_one_parent_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match=r"label 'B' is listed twice under 'A' \(line 2\)"):
        load_taxonomy(_write(tmp_path, "Root\tA\nA\tB\tB\n"))


def test_unknown_parent_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, "Root\tA\nA\tB\nZ\tC\n")
    with pytest.raises(TaxonomyError, match=r"unknown parent 'Z' at line 3"):
        load_taxonomy(path)


def test_unknown_parent_in_json_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps({"Root": ["A"], "Q": ["B"]}, indent=1), "tax.json")
    with pytest.raises(TaxonomyError, match=r"unknown parent 'Q' at line 5"):
        load_taxonomy(path)


@pytest.mark.parametrize("text", ["", "\n  \n"])
def test_empty_file_is_rejected(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(TaxonomyError, match=r"tax\.txt: the taxonomy file is empty"):
        load_taxonomy(path)


def test_malformed_hiagm_line_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, "Root\tA\tB\nA\n")
    with pytest.raises(TaxonomyError, match=r"malformed line 2: 'A' has a parent but no children"):
        load_taxonomy(path)


def test_malformed_pairs_line_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, "A\tB\nA\tC\tD\n")
    with pytest.raises(TaxonomyError, match=r"malformed line 2: 'A\\tC\\tD'"):
        load_taxonomy(path)


def test_malformed_json_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"Root": ["A"],\n "A": ["B",]\n}', "tax.json")
    with pytest.raises(TaxonomyError, match=r"malformed JSON at line 2"):
        load_taxonomy(path)


def test_json_without_root_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match=r'no "Root" entry'):
        load_taxonomy(_write(tmp_path, '{"A": ["B"]}', "tax.json"))


def test_pairs_with_lone_top_level_label(tmp_path: Path) -> None:
    tax = load_taxonomy(_write(tmp_path, "Fiction\tMystery\nPoetry\nMystery\tNoir\n"))
    assert [tax.labels[i] for i in tax.top_level] == ["Fiction", "Poetry"]
    assert tax.levels[tax.id("Noir")] == 3


def test_hiagm_space_separated_file(tmp_path: Path) -> None:
    tax = load_taxonomy(_write(tmp_path, "ROOT Agent Work\nAgent Person\n"))
    assert tax.labels == ("Agent", "Work", "Person")


def test_unknown_label_lookup_names_it(toy_taxonomy: Taxonomy) -> None:
    with pytest.raises(KeyError, match="'nope' is not in the taxonomy"):
        toy_taxonomy.id("nope")
