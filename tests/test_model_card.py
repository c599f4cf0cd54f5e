"""Model card hygiene (issue #16, item 11): label names are shown literally, never as Markdown or HTML, and a local
encoder path never reaches the card."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from htc_tools.model_card import build_model_card, escape_markdown, hub_model_id

HOSTILE = ["<script>alert(1)</script>", "**bold** [link](https://evil.invalid) | cell", "two\nlines # heading"]


@pytest.fixture
def flat_model(tiny_bert_config: BertConfig) -> BertForSequenceClassification:
    torch.manual_seed(0)
    tiny_bert_config.id2label = dict(enumerate(HOSTILE))
    tiny_bert_config.label2id = {n: i for i, n in enumerate(HOSTILE)}
    return BertForSequenceClassification(tiny_bert_config)


def test_label_names_are_escaped(flat_model: BertForSequenceClassification) -> None:
    text = build_model_card(flat_model, results={"test_macro_f1": 0.5}).text
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert r"- **\*\*bold\*\* \[link\](https://evil.invalid) \| cell** (0 children)" in text
    assert r"- **two lines \# heading** (0 children)" in text
    assert "| test_macro_f1 | 0.5000 |" in text  # metric names stay readable


@pytest.mark.parametrize("local", ["/home/someone/encoders/bert", "./encoders/bert", "~/bert", "C:\\models\\bert"])
def test_a_local_encoder_path_never_reaches_the_card(flat_model: BertForSequenceClassification, local: str) -> None:
    card = build_model_card(flat_model, base_model=local)
    assert card.data.base_model is None
    assert local not in card.content and "hierarchical text classifier on `" not in card.text  # nor the text


def test_an_existing_local_folder_is_not_taken_for_a_hub_id(flat_model: BertForSequenceClassification,
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "encoders" / "bert").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert hub_model_id("encoders/bert") is None
    assert build_model_card(flat_model, base_model="encoders/bert").data.base_model is None


def test_hub_ids_are_kept(flat_model: BertForSequenceClassification) -> None:
    hub_id = "google-bert/bert-base-uncased"
    card = build_model_card(flat_model, base_model=hub_id)
    assert card.data.base_model == hub_id and f"on `{hub_id}`" in card.text
    legacy = build_model_card(flat_model, base_model="bert-base-uncased")
    assert legacy.data.base_model is None and "on `bert-base-uncased`" in legacy.text  # text only: no owner


def test_escape_markdown_keeps_plain_names() -> None:
    assert escape_markdown("Intestinal infectious diseases (A00-A09)") == "Intestinal infectious diseases (A00-A09)"
    assert escape_markdown("R&D") == "R&amp;D"
