"""Bad records in data files: each is an error naming the file and the line (issue #16, item 7)."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from htc_tools.data import DataFileError, load_dataset_dir, prepare_split
from htc_tools.taxonomy import Taxonomy

GOOD = '{"text": "the ball game", "labels": ["ball"]}\n'


def _write(tmp_path: Path, content: str | bytes, name: str = "train.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


@pytest.mark.parametrize(("second_line", "message"), [
    ('{"text": null, "labels": ["ball"]}', r"line 3: 'text' is null"),
    ('{"labels": ["ball"]}', r"line 3: no 'text' field \(fields: 'labels'\)"),
    ('{"text": "a song", "labels": null}', r"line 3: 'labels' is null"),
    ('{"text": "a song"}', r"line 3: no 'labels' field"),
    ('{"text": "a song", "labels": "music"}', r"line 3: 'labels' is a string \('music'\) but a list at line 1"),
    ('{"text": 5, "labels": ["ball"]}', r"line 3: 'text' must be a string, got int 5"),
    ('{"text": "a song", "labels": ["music", null]}', r"line 3: 'labels' must hold label names \(strings\)"),
    ('{"text": "a song", "labels": ["music"]', r"line 3: malformed JSON"),
    ('["a song", ["music"]]', r"line 3: expected a JSON object"),
], ids=["null_text", "missing_text", "null_labels", "missing_labels", "string_labels", "number_text",
        "null_label_name", "bad_json", "not_an_object"])
def test_a_bad_jsonl_record_is_named_by_file_and_line(tmp_path: Path, toy_taxonomy: Taxonomy, second_line: str,
                                                      message: str) -> None:
    path = _write(tmp_path, GOOD + "\n" + second_line + "\n" + GOOD)  # a blank line 2 still counts
    with pytest.raises(DataFileError, match=rf"train\.jsonl, {message}"):
        prepare_split(path, toy_taxonomy)


@pytest.mark.parametrize("content", ["", "\n\n"], ids=["empty", "blank_lines"])
def test_an_empty_data_file_is_named(tmp_path: Path, toy_taxonomy: Taxonomy, content: str) -> None:
    with pytest.raises(DataFileError, match=r"train\.jsonl: no records \(the file is empty\)"):
        prepare_split(_write(tmp_path, content), toy_taxonomy)


def test_a_json_array_file_names_the_record(tmp_path: Path, toy_taxonomy: Taxonomy) -> None:
    records = [{"text": "the ball game", "labels": ["ball"]}, {"text": None, "labels": ["ball"]}]
    with pytest.raises(DataFileError, match=r"train\.json, record 2: 'text' is null"):
        prepare_split(_write(tmp_path, json.dumps(records, indent=1), "train.json"), toy_taxonomy)


def test_a_non_utf8_data_file_is_named_with_the_line(tmp_path: Path, toy_taxonomy: Taxonomy) -> None:
    path = _write(tmp_path, (GOOD + '{"text": "caf\xe9", "labels": ["ball"]}\n').encode("latin-1"))
    with pytest.raises(DataFileError, match=r"train\.jsonl, line 2: not UTF-8 text \(byte 0xe9\)"):
        prepare_split(path, toy_taxonomy)


@pytest.mark.parametrize(("rows", "message"), [
    ('the ball game,"[""ball"""\n', r"line 3: the 'labels' cell '\[\"ball\"' is not valid JSON"),
    ('the ball game,"{""a"": 1}"\n', None),  # not starting with '[': names joined by ';' (an unknown label)
    ("a song\n", r"line 3: 1 cell\(s\), the header has 2"),
], ids=["bad_json_cell", "braces_are_a_name", "short_row"])
def test_a_bad_csv_row_is_named_by_file_and_line(tmp_path: Path, toy_taxonomy: Taxonomy, rows: str,
                                                 message: str | None) -> None:
    path = _write(tmp_path, "text,labels\nthe song,music\n" + rows, "train.csv")
    if message is None:
        with pytest.raises(ValueError, match=r"not in the taxonomy: '\{\"a\": 1\}'"):
            prepare_split(path, toy_taxonomy)
        return
    with pytest.raises(DataFileError, match=rf"train\.csv, {message}"):
        prepare_split(path, toy_taxonomy)


@pytest.mark.parametrize(("content", "message"), [("", "the file is empty"), ("text,labels\n", "only a header line")])
def test_an_empty_csv_file_is_named(tmp_path: Path, toy_taxonomy: Taxonomy, content: str, message: str) -> None:
    with pytest.raises(DataFileError, match=rf"train\.csv: no records \({message}\)"):
        prepare_split(_write(tmp_path, content, "train.csv"), toy_taxonomy)


def test_a_csv_cell_spanning_lines_names_the_line_it_starts_on(tmp_path: Path, toy_taxonomy: Taxonomy) -> None:
    path = _write(tmp_path, 'text,labels\n"a long\nsong",music\nthe game,"[""ball"]\n', "train.csv")
    with pytest.raises(DataFileError, match=r"train\.csv, line 4: the 'labels' cell"):
        prepare_split(path, toy_taxonomy)


def test_good_files_with_a_byte_order_mark_and_blank_lines_load(tmp_path: Path, toy_taxonomy: Taxonomy) -> None:
    jsonl = prepare_split(_write(tmp_path, "\ufeff" + GOOD + "\n" + GOOD), toy_taxonomy)
    csv = prepare_split(_write(tmp_path, '\ufefftext,labels\nthe song,arts;music\n\nthe game,"[""ball""]"\n',
                               "train.csv"), toy_taxonomy)
    assert jsonl["label_names"] == [["sports", "ball"]] * 2
    assert csv["label_names"] == [["arts", "music"], ["sports", "ball"]]


def test_a_dataset_object_names_the_row(toy_taxonomy: Taxonomy) -> None:
    ds = datasets.Dataset.from_list([{"text": "the song", "labels": ["music"]}, {"text": None, "labels": ["ball"]}])
    with pytest.raises(DataFileError, match=r"dataset, row 2: 'text' is null"):
        prepare_split(ds, toy_taxonomy)


def test_load_dataset_dir_names_the_split_file(toy_dataset_dir: Path) -> None:
    with open(toy_dataset_dir / "dev.jsonl", "a") as f:
        f.write('{"text": "more", "labels": "music"}\n')
    with pytest.raises(DataFileError, match=r"dev\.jsonl, line 9: 'labels' is a string"):
        load_dataset_dir(toy_dataset_dir)


def test_numeric_label_codes_in_a_csv_stay_names(tmp_path: Path) -> None:
    """Label codes such as "004" or "401.90" are names: not numbers (a crash naming nothing, or "4")."""
    codes = Taxonomy.from_dict({"Root": ["004", "401"], "401": ["401.90"]})
    split = prepare_split(_write(tmp_path, "text,labels\nthe song,004\nthe game,401.90\n", "train.csv"), codes)
    assert split["label_names"] == [["004"], ["401", "401.90"]]
