"""The embeddings + logistic-regression baseline (--model_type embed_lr): pooling from the sentence-transformers
config, the head equal to scikit-learn's regressions, save/load/serve, top-down consistency and the CLI run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel

from htc_tools.data import load_dataset_dir
from htc_tools.embed_lr import EmbedLRForHierarchicalClassification
from htc_tools.embed_lr_training import encode, fit_embed_lr, fit_label_regressions, sentence_transformers_pooling
from htc_tools.hub import save_model_folder

pytest.importorskip("sklearn")
REPO = Path(__file__).resolve().parents[1]


def write_st_config(folder: Path, modes: dict[str, bool], normalize: bool = True, extra: list | None = None) -> None:
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize"})
    modules += extra or []
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    config = {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": False,
              "pooling_mode_mean_sqrt_len_tokens": False}
    config.update({f"pooling_mode_{m}" + ("_token" if m == "cls" else "_tokens"): on for m, on in modes.items()})
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(config))


@pytest.fixture
def toy_data(toy_dataset_dir: Path):
    return load_dataset_dir(toy_dataset_dir)


def test_pooling_follows_the_sentence_transformers_config(tiny_encoder_dir: Path) -> None:
    assert sentence_transformers_pooling(tiny_encoder_dir) == ("cls", False)  # no modules.json: [CLS]
    write_st_config(tiny_encoder_dir, {"mean": True})
    assert sentence_transformers_pooling(tiny_encoder_dir) == ("mean", True)
    write_st_config(tiny_encoder_dir, {"max": True}, normalize=False)
    assert sentence_transformers_pooling(tiny_encoder_dir) == ("max", False)
    write_st_config(tiny_encoder_dir, {"mean": True, "cls": True})
    with pytest.raises(ValueError, match="exactly one pooling mode"):
        sentence_transformers_pooling(tiny_encoder_dir)
    write_st_config(tiny_encoder_dir, {"mean": True}, extra=[{"type": "sentence_transformers.models.Dense",
                                                              "path": "3_Dense"}])
    with pytest.raises(ValueError, match="Dense"):
        sentence_transformers_pooling(tiny_encoder_dir)


def test_mean_pooling_and_normalisation_change_the_embedding(tiny_encoder_dir: Path, toy_taxonomy, tokenizer) -> None:
    texts = ["the team won the ball game", "a gene"]
    args = (str(tiny_encoder_dir), list(toy_taxonomy.labels), [list(p) for p in toy_taxonomy.parents])
    cls = encode(EmbedLRForHierarchicalClassification.from_encoder(*args, pooling="cls"), tokenizer, texts)
    mean = encode(EmbedLRForHierarchicalClassification.from_encoder(*args, pooling="mean"), tokenizer, texts)
    unit = encode(EmbedLRForHierarchicalClassification.from_encoder(*args, pooling="mean", normalize=True), tokenizer,
                  texts)
    encoder = AutoModel.from_pretrained(tiny_encoder_dir)
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"][..., None].float()
    np.testing.assert_allclose(cls, hidden[:, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(mean, ((hidden * mask).sum(1) / mask.sum(1)).numpy(), atol=1e-5)  # padding left out
    np.testing.assert_allclose(unit, mean / np.linalg.norm(mean, axis=1, keepdims=True), atol=1e-5)


def test_fitted_probabilities_equal_sklearn_predict_proba(tiny_encoder_dir: Path, toy_data, tokenizer) -> None:
    from sklearn.linear_model import LogisticRegression

    splits, taxonomy = toy_data
    write_st_config(tiny_encoder_dir, {"mean": True})
    texts, labels = list(splits["train"]["text"]), np.asarray(splits["train"]["labels"])
    model = fit_embed_lr(str(tiny_encoder_dir), tokenizer, taxonomy, texts, labels, c=2.0)
    assert (model.config.pooling, model.config.normalize, model.config.regularization_c) == ("mean", True, 2.0)
    embeddings = encode(model, tokenizer, texts)
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    probabilities = model.decode(**batch).probabilities.numpy()
    for label in range(taxonomy.num_labels):
        column = labels[:, label] > 0
        if column.all() or not column.any():  # one class only: the smoothed prior
            n = column.sum()
            np.testing.assert_allclose(probabilities[:, label], (n + 1) / (len(column) + 2), atol=1e-6)
            continue
        expected = LogisticRegression(C=2.0, max_iter=1000).fit(embeddings, column).predict_proba(embeddings)[:, 1]
        np.testing.assert_allclose(probabilities[:, label], expected, atol=1e-5)


def test_top_down_consistency_drops_labels_below_an_unselected_parent(tiny_encoder_dir: Path, toy_taxonomy,
                                                                      tokenizer) -> None:
    model = EmbedLRForHierarchicalClassification.from_encoder(
        str(tiny_encoder_dir), list(toy_taxonomy.labels), [list(p) for p in toy_taxonomy.parents])
    with torch.no_grad():
        model.classifier.bias.fill_(4.0)
        model.classifier.bias[toy_taxonomy.id("science")] = -8.0
    batch = tokenizer(["a gene"], return_tensors="pt")
    free = model.decode(**batch, hierarchy_consistent=False).selected[0]
    consistent = model.decode(**batch, hierarchy_consistent=True).selected[0]
    below_science = [toy_taxonomy.id(n) for n in ("chemistry", "biology", "biochem", "genes")]
    assert free[below_science].all() and not consistent[below_science].any()
    assert torch.equal(free[[toy_taxonomy.id("sports"), toy_taxonomy.id("ball")]],
                       consistent[[toy_taxonomy.id("sports"), toy_taxonomy.id("ball")]])


def test_saved_folder_reloads_and_serves(tiny_encoder_dir: Path, toy_data, tokenizer, tmp_path: Path) -> None:
    from transformers import pipeline

    splits, taxonomy = toy_data
    model = fit_embed_lr(str(tiny_encoder_dir), tokenizer, taxonomy, list(splits["train"]["text"]),
                         np.asarray(splits["train"]["labels"]))
    model.config.level_thresholds = [0.4, 0.3, 0.2]
    folder = save_model_folder(model, tokenizer, tmp_path / "embed_lr")
    assert {"modeling_embed_lr.py", "configuration_embed_lr.py", "thresholds.py", "hierarchical_pipeline.py",
            "model.safetensors"} <= {p.name for p in folder.iterdir()}
    loaded = AutoModel.from_pretrained(folder, trust_remote_code=True)
    batch = tokenizer(["the team won the ball game", "a gene in the cell"], padding=True, return_tensors="pt")
    before, after = model.decode(**batch), loaded.decode(**batch)
    torch.testing.assert_close(after.probabilities, before.probabilities)
    assert torch.equal(after.selected, before.selected) and loaded.config.level_thresholds == [0.4, 0.3, 0.2]
    served = pipeline("hierarchical-text-classification", model=str(folder), trust_remote_code=True)
    result = served("a gene in the cell")
    chosen = before.selected[1].nonzero().flatten().tolist()
    assert sorted(r["label"] for r in result) == sorted(taxonomy.labels[i] for i in chosen)
    assert [r["score"] for r in result] == sorted((r["score"] for r in result), reverse=True)


def test_cli_fits_evaluates_and_saves(tiny_encoder_dir: Path, toy_dataset_dir: Path, tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "examples"))
    from run_hierarchical_classification import main

    out = tmp_path / "run"
    results = main(["--model_type", "embed_lr", "--model_name_or_path", str(tiny_encoder_dir), "--dataset_dir",
                    str(toy_dataset_dir), "--output_dir", str(out), "--do_train", "--do_eval", "--do_predict",
                    "--embed_lr_c", "8", "--tune_threshold", "per_level", "--report_to", "none", "--use_cpu", "true"])
    for key in ("eval_micro_f1", "test_macro_f1", "test_hier_f1", "test_level_3_macro_f1", "train_runtime"):
        assert key in results
    assert json.loads((out / "all_results.json").read_text())["test_micro_f1"] == results["test_micro_f1"]
    assert len((out / "test_predictions.jsonl").read_text().splitlines()) == 8
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "embed_lr" and config["regularization_c"] == 8.0
    assert len(config["level_thresholds"]) == 3 and config["level_thresholds"] == results["tuned_level_thresholds"]
    # the folder continues as a trained model: loaded, not re-fitted
    again = main(["--model_type", "embed_lr", "--model_name_or_path", str(out), "--dataset_dir", str(toy_dataset_dir),
                  "--output_dir", str(tmp_path / "again"), "--do_predict", "--report_to", "none", "--use_cpu", "true"])
    assert again["test_micro_f1"] == results["test_micro_f1"]


def test_label_seen_in_every_or_no_training_text_gets_its_prior() -> None:
    embeddings = np.random.default_rng(0).normal(size=(6, 4))
    labels = np.array([[1, 0, 1]] * 3 + [[1, 0, 0]] * 3)
    coef, intercept = fit_label_regressions(embeddings, labels)
    assert not coef[:2].any() and coef[2].any()
    np.testing.assert_allclose(intercept[:2], [np.log(7 / 1), np.log(1 / 7)])
