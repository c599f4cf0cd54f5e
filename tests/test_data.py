from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import datasets
import pytest
import torch
from transformers import DataCollatorWithPadding

from htc_tools.data import (
    UnknownLabelsError,
    encode_labels,
    load_dataset_dir,
    prepare_split,
    prepare_splits,
    tokenize_dataset,
)
from htc_tools.taxonomy import Taxonomy


def _ids(tax: Taxonomy, vector: list[float]) -> set[str]:
    return {tax.labels[i] for i, v in enumerate(vector) if v}


def test_leaf_only_and_closed_labels_normalise_the_same(toy_taxonomy: Taxonomy) -> None:
    leaf_only = datasets.Dataset.from_list([{"text": "x", "labels": ["biochem"]}])
    closed = datasets.Dataset.from_list([{"text": "x", "labels": ["science", "biology", "chemistry", "biochem"]}])
    a, b = prepare_split(leaf_only, toy_taxonomy), prepare_split(closed, toy_taxonomy)
    assert a[0] == b[0]
    assert a[0]["label_names"] == ["science", "chemistry", "biology", "biochem"]  # id order
    assert _ids(toy_taxonomy, a[0]["labels"]) == {"science", "chemistry", "biology", "biochem"}
    assert len(a[0]["labels"]) == toy_taxonomy.num_labels


def test_multi_hot_is_in_taxonomy_id_order(toy_taxonomy: Taxonomy) -> None:
    vector = encode_labels(["ball"], toy_taxonomy)
    assert [i for i, v in enumerate(vector) if v] == sorted([toy_taxonomy.id("sports"), toy_taxonomy.id("ball")])


def test_unknown_labels_raise_listing_them(toy_taxonomy: Taxonomy) -> None:
    ds = datasets.Dataset.from_list([{"text": "x", "labels": ["ball", "cricket"]},
                                     {"text": "y", "labels": ["opera", "cricket"]}])
    expected = r"2 label\(s\) not in the taxonomy: 'cricket' \(2x\), 'opera' \(1x\)"
    with pytest.raises(UnknownLabelsError, match=expected):
        prepare_split(ds, toy_taxonomy)


def test_unknown_labels_can_be_dropped_with_a_count(toy_taxonomy: Taxonomy, caplog: pytest.LogCaptureFixture) -> None:
    ds = datasets.Dataset.from_list([{"text": "x", "labels": ["ball", "cricket"]}, {"text": "y", "labels": ["opera"]}])
    with caplog.at_level(logging.WARNING, logger="htc_tools.data"):
        out = prepare_split(ds, toy_taxonomy, unknown_labels="drop")
    assert "dropped 2 occurrence(s) of 2 unknown label(s): ['cricket', 'opera']" in caplog.text
    assert out[0]["label_names"] == ["sports", "ball"]
    assert out[1]["label_names"] == []


def test_csv_with_json_list_and_separator_cells(tmp_path: Path, toy_taxonomy: Taxonomy) -> None:
    path = tmp_path / "train.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["body", "cats"])
        writer.writerow(["the ball game", '["ball"]'])
        writer.writerow(["the song", "arts; music"])
    out = prepare_split(path, toy_taxonomy, text_field="body", label_field="cats")
    assert out["label_names"] == [["sports", "ball"], ["arts", "music"]]
    assert out["text"] == ["the ball game", "the song"]


def test_missing_columns_are_named(toy_taxonomy: Taxonomy) -> None:
    ds = datasets.Dataset.from_list([{"body": "x", "labels": []}])
    with pytest.raises(ValueError, match=r"missing column\(s\) \['text'\]"):
        prepare_split(ds, toy_taxonomy)


def test_dataset_dir_end_to_end_with_tokenizer(toy_dataset_dir: Path, tokenizer) -> None:
    (toy_dataset_dir / "dev.jsonl").rename(toy_dataset_dir / "val.jsonl")  # alias accepted
    splits, tax = load_dataset_dir(toy_dataset_dir)
    assert set(splits) == {"train", "dev", "test"}
    tokenized = tokenize_dataset(splits, tokenizer, max_length=6)
    assert set(tokenized["train"].column_names) == {"labels", "input_ids", "attention_mask", "token_type_ids"}
    batch = DataCollatorWithPadding(tokenizer)([tokenized["train"][i] for i in range(3)])
    assert batch["labels"].shape == (3, tax.num_labels) and batch["labels"].dtype == torch.float32
    assert batch["input_ids"].shape[1] <= 6
    assert tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist())[:3] == ["[CLS]", "the", "team"]


def test_prepare_splits_on_a_dataset_dict(toy_taxonomy: Taxonomy, toy_records: list[dict]) -> None:
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(toy_records)})
    out = prepare_splits(dd, toy_taxonomy)
    assert out["train"].num_rows == len(toy_records)


def test_dataset_dir_without_train_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "taxonomy.json").write_text(json.dumps({"Root": ["a"]}))
    with pytest.raises(FileNotFoundError, match=r"no train\.jsonl"):
        load_dataset_dir(tmp_path)
