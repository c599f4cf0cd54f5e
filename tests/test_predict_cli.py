"""``htc-predict`` (issue #12): one line per input with labels, scores and paths, from files and datasets, for
hierarchical models (their pipeline) and flat ones; it works without the model packages importable."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import datasets
import pytest
import torch
from conftest import MODEL_PACKAGES, run_without_packages
from transformers import BertForSequenceClassification

from hbgl_hf import HBGLForHierarchicalClassification
from htc_tools.cli.predict import main
from htc_tools.hub import hierarchical_pipeline, save_model_folder

TEXTS = ["the team won the ball game", "a gene in the cell", "the band and the song", "the molecule", "a vote"]


@pytest.fixture
def hbgl_folder(tiny_encoder_dir: Path, toy_taxonomy, tokenizer, tmp_path: Path):
    torch.manual_seed(0)
    model = HBGLForHierarchicalClassification.from_encoder(str(tiny_encoder_dir), list(toy_taxonomy.labels),
                                                          [list(p) for p in toy_taxonomy.parents]).eval()
    offset = model.config.label_token_offset
    with torch.no_grad():  # labels fire (+1), "science" does not (-8): its children's paths still start at it
        model.cls.bias[offset : offset + toy_taxonomy.num_labels] = torch.linspace(-1, 2, toy_taxonomy.num_labels)
        model.cls.bias[offset + toy_taxonomy.id("science")] = -8.0
    save_model_folder(model, tokenizer, tmp_path / "hbgl")
    return model, tmp_path / "hbgl"


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def expected_lines(model, tokenizer, texts: list[str], **options: object) -> list[dict]:
    results = hierarchical_pipeline(model, tokenizer)(texts, **options)
    return [{"text": t, "labels": [r["label"] for r in rs], "scores": [r["score"] for r in rs],
             "paths": [r["path"] for r in rs]} for t, rs in zip(texts, results, strict=True)]


def assert_same(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert (g["text"], g["labels"], g["paths"]) == (w["text"], w["labels"], w["paths"])
        assert g["scores"] == pytest.approx(w["scores"], abs=1e-6)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_one_line_per_input_with_labels_scores_and_paths(suffix: str, hbgl_folder, tokenizer, tmp_path: Path) -> None:
    model, folder = hbgl_folder
    source = tmp_path / f"input{suffix}"
    rows = [{"id": i, "text": t} for i, t in enumerate(TEXTS)]
    if suffix == ".parquet":
        datasets.Dataset.from_list(rows).to_parquet(source)
    elif suffix == ".csv":
        with open(source, "w", newline="") as f:
            csv.DictWriter(f, ["id", "text"]).writeheader()
            csv.DictWriter(f, ["id", "text"]).writerows(rows)
    else:
        source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["--model", str(folder), "--input", str(source), "--output", str(tmp_path / "out.jsonl"),
                 "--batch_size", "2"]) == 0
    got = read_lines(tmp_path / "out.jsonl")
    assert_same(got, expected_lines(model, tokenizer, TEXTS))
    assert any(got[i]["labels"] for i in range(len(TEXTS)))
    assert all(p[-1] == label for line in got for p, label in zip(line["paths"], line["labels"], strict=True))
    assert any(len(p) == 3 for line in got for p in line["paths"])  # root-to-leaf paths, not bare labels


def test_threshold_and_consistency_switches_change_the_output(hbgl_folder, tokenizer, tmp_path: Path) -> None:
    model, folder = hbgl_folder
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    common = ["--model", str(folder), "--input", str(source)]
    main([*common, "--output", str(tmp_path / "default.jsonl")])
    main([*common, "--output", str(tmp_path / "strict.jsonl"), "--threshold", "0.8", "--hierarchy_consistent"])
    default, strict = read_lines(tmp_path / "default.jsonl"), read_lines(tmp_path / "strict.jsonl")
    assert_same(strict, expected_lines(model, tokenizer, TEXTS, threshold=0.8, hierarchy_consistent=True))
    assert sum(len(line["labels"]) for line in strict) < sum(len(line["labels"]) for line in default)


def test_a_dataset_folder_with_splits_and_several_text_columns(hbgl_folder, tokenizer, tmp_path: Path) -> None:
    model, folder = hbgl_folder
    data = tmp_path / "data"
    data.mkdir()
    for split, texts in (("train", TEXTS[:2]), ("test", TEXTS)):
        (data / f"{split}.jsonl").write_text("".join(
            json.dumps({"title": t.split()[0], "body": " ".join(t.split()[1:])}) + "\n" for t in texts))
    args = ["--model", str(folder), "--input", str(data), "--output", str(tmp_path / "out.jsonl"),
            "--text_column_name", "title,body"]
    with pytest.raises(ValueError, match=r"has the splits .*choose one with --split"):
        main(args)
    main([*args, "--split", "test"])
    assert_same(read_lines(tmp_path / "out.jsonl"), expected_lines(model, tokenizer, TEXTS))
    with pytest.raises(ValueError, match=r"no column\(s\) text; its columns are title, body"):
        main([*args[:-2], "--split", "test"])


def test_a_flat_model_selects_labels_by_sigmoid_threshold(tiny_bert_config, toy_taxonomy, tokenizer,
                                                          tmp_path: Path) -> None:
    tiny_bert_config.num_labels = toy_taxonomy.num_labels
    tiny_bert_config.id2label = dict(enumerate(toy_taxonomy.labels))
    tiny_bert_config.problem_type = "multi_label_classification"
    torch.manual_seed(0)
    flat = BertForSequenceClassification(tiny_bert_config).eval()
    with torch.no_grad():
        flat.classifier.bias.copy_(torch.linspace(-2, 2, toy_taxonomy.num_labels))
    save_model_folder(flat, tokenizer, tmp_path / "flat")
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    main(["--model", str(tmp_path / "flat"), "--input", str(source), "--output", str(tmp_path / "out.jsonl"),
          "--threshold", "0.6", "--batch_size", "2"])
    got = read_lines(tmp_path / "out.jsonl")
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        probabilities = torch.sigmoid(flat(**enc).logits)
    for line, row in zip(got, probabilities, strict=True):
        chosen = sorted(torch.nonzero(row > 0.6).flatten().tolist(), key=lambda i: -row[i].item())
        assert line["labels"] == [toy_taxonomy.labels[i] for i in chosen] and line["paths"] == [[n] for n in
                                                                                                line["labels"]]
        assert line["scores"] == pytest.approx([row[i].item() for i in chosen], abs=1e-5)
    assert any(line["labels"] for line in got) and not all(len(line["labels"]) == len(toy_taxonomy.labels)
                                                           for line in got)


def test_predict_runs_without_the_model_packages(hbgl_folder, tokenizer, tmp_path: Path) -> None:
    """The model comes with its own code (AutoModel + trust_remote_code); hbgl_hf/hpt_hf are never imported."""
    model, folder = hbgl_folder
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    script = """
        from htc_tools.cli.predict import main
        main(sys.argv[1:])
        print(json.dumps({"imported": sorted(m for m in sys.modules if m.split(".")[0] in ("hbgl_hf", "hpt_hf"))}))
    """
    out = run_without_packages(script, "--model", str(folder), "--input", str(source), "--output",
                               str(tmp_path / "out.jsonl"), home=tmp_path, blocked=MODEL_PACKAGES)
    assert out["imported"] == []
    assert_same(read_lines(tmp_path / "out.jsonl"), expected_lines(model, tokenizer, TEXTS))


# ------------------------------------------------------------------ review: inputs users really pass
def test_csv_cells_that_read_as_null_or_numbers_stay_text(hbgl_folder, tokenizer, tmp_path: Path) -> None:
    """A CSV title ``NA``, ``123`` or an empty body is text, as htc-train reads the same file (pandas would make
    them NaN / int and the run would stop)."""
    model, folder = hbgl_folder
    source = tmp_path / "in.csv"
    source.write_text("id,title,body\n1,NA,the team won the ball game\n2,123,a gene in the cell\n3,the band,\n")
    main(["--model", str(folder), "--input", str(source), "--output", str(tmp_path / "out.jsonl"),
          "--text_column_name", "title,body", "--text_column_delimiter", ". "])
    texts = ["NA. the team won the ball game", "123. a gene in the cell", "the band. "]
    assert_same(read_lines(tmp_path / "out.jsonl"), expected_lines(model, tokenizer, texts))


def test_a_flat_model_with_the_hierarchy_shows_bare_names_and_root_to_label_paths(
        tiny_bert_config, tokenizer, tmp_path: Path) -> None:
    """A flat model trained by htc-train keeps ``config.label_parents``; its lines show labels and paths as the
    hierarchical models' do (``food`` with path ``[pets, dogs, food]``, not ``dogs/food`` with ``[dogs/food]``)."""
    from htc_tools.taxonomy import Taxonomy

    taxonomy = Taxonomy.from_paths([("pets", "dogs", "food"), ("pets", "cats", "food")])
    tiny_bert_config.num_labels = taxonomy.num_labels
    tiny_bert_config.id2label = dict(enumerate(taxonomy.labels))
    tiny_bert_config.problem_type = "multi_label_classification"
    tiny_bert_config.label_parents = [list(p) for p in taxonomy.parents]
    flat = BertForSequenceClassification(tiny_bert_config).eval()
    with torch.no_grad():
        flat.classifier.bias.fill_(5.0)  # every label selected
    save_model_folder(flat, tokenizer, tmp_path / "flat")
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": TEXTS[0]}) + "\n")
    main(["--model", str(tmp_path / "flat"), "--input", str(source), "--output", str(tmp_path / "out.jsonl")])
    (line,) = read_lines(tmp_path / "out.jsonl")
    shown = dict(zip(map(tuple, line["paths"]), line["labels"], strict=True))
    assert shown == {("pets",): "pets", ("pets", "dogs"): "dogs", ("pets", "cats"): "cats",
                     ("pets", "dogs", "food"): "food", ("pets", "cats", "food"): "food"}


def test_a_folder_without_the_pipeline_entry_still_decodes_hierarchically(hbgl_folder, tokenizer,
                                                                          tmp_path: Path) -> None:
    """A checkpoint written before models carried ``custom_pipelines`` is still an HBGL model: it is decoded by its
    pipeline, not scored as a flat head through its ``AutoModelForSequenceClassification`` entry."""
    model, folder = hbgl_folder
    config = json.loads((folder / "config.json").read_text())
    config.pop("custom_pipelines")
    (folder / "config.json").write_text(json.dumps(config))
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    main(["--model", str(folder), "--input", str(source), "--output", str(tmp_path / "out.jsonl"),
          "--hierarchy_consistent"])
    assert_same(read_lines(tmp_path / "out.jsonl"), expected_lines(model, tokenizer, TEXTS, hierarchy_consistent=True))


def test_hierarchy_consistent_on_a_flat_model_is_an_error(tiny_bert_config, toy_taxonomy, tokenizer,
                                                         tmp_path: Path) -> None:
    tiny_bert_config.num_labels = toy_taxonomy.num_labels
    tiny_bert_config.problem_type = "multi_label_classification"
    save_model_folder(BertForSequenceClassification(tiny_bert_config).eval(), tokenizer, tmp_path / "flat")
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": TEXTS[0]}) + "\n")
    with pytest.raises(ValueError, match=r"--hierarchy_consistent: .* is a flat model"):
        main(["--model", str(tmp_path / "flat"), "--input", str(source), "--output", str(tmp_path / "out.jsonl"),
              "--hierarchy_consistent"])
