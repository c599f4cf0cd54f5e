"""Publishing (issue #12): a model loaded with AutoModel (its own code, the model packages never imported) pushes
and reloads bit-exact with a card that names the repo, the base model and the results; the cards' usage code
runs as written; Trainer checkpoints load with the hierarchical pipeline."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from conftest import MODEL_PACKAGES, run_without_packages
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from transformers import AutoModel, BertForSequenceClassification, DataCollatorWithPadding, TrainingArguments

from hbgl_hf import HBGLForHierarchicalClassification
from hpt_hf import HPTForHierarchicalClassification
from htc_tools.data import load_dataset_dir, tokenize_dataset
from htc_tools.hub import hierarchical_pipeline, save_model_folder
from htc_tools.trainer import HierarchicalTrainer

TESTS = Path(__file__).resolve().parent
CLASSES = {"hbgl": HBGLForHierarchicalClassification, "hpt": HPTForHierarchicalClassification}
TEXTS = ["the team won the ball game", "a gene in the cell", "the band and the song"]


def hierarchical_model(model_type: str, encoder: Path, taxonomy):
    torch.manual_seed(0)
    model = CLASSES[model_type].from_encoder(str(encoder), list(taxonomy.labels), [list(p) for p in taxonomy.parents])
    with torch.no_grad():  # weights that differ from any fresh initialisation
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return model.eval()


def usage_code(card_text: str) -> str:
    """The first ```python block of a model card."""
    return re.search(r"```python\n(.*?)```", card_text, re.S).group(1)


PUSH_LOADED = """
    import torch
    sys.path.insert(0, sys.argv[3])
    import fake_hub
    from huggingface_hub import ModelCard
    from transformers import AutoModel, AutoTokenizer
    from htc_tools.hub import push_model_folder
    folder, root = sys.argv[1], sys.argv[2]
    hub = fake_hub.install(root)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True)
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    url = push_model_folder(model, tokenizer, "me/tiny")
    again = AutoModel.from_pretrained(root + "/me/tiny", trust_remote_code=True)
    a, b = model.state_dict(), again.state_dict()
    card = ModelCard.load(root + "/me/tiny/README.md")
    print(json.dumps({
        "exact": a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "url": url,
        "commits": hub.commits, "validated": hub.validated, "base_model": card.data.base_model,
        "license": card.data.license, "widget": card.data.widget, "text": card.text,
        "results": sorted([r.dataset_split, r.metric_name, r.metric_value] for r in card.data.eval_results or []),
        "imported": sorted(m for m in sys.modules if m.split(".")[0] in ("hbgl_hf", "hpt_hf")),
    }))
"""

RUN_USAGE = """
    texts = ["the team won the ball game", "a gene in the cell"]
    exec(sys.argv[1].replace('["first text", "second text"]', repr(texts)))
    print(json.dumps({"predictions": predictions, "probabilities": decoded.probabilities.tolist()}))
"""


@pytest.mark.parametrize("model_type", ["hbgl", "hpt"])
def test_push_of_a_model_loaded_with_automodel_round_trips(model_type: str, tiny_encoder_dir: Path, toy_dataset_dir,
                                                           tokenizer, tmp_path: Path) -> None:
    """Saved, then in a process where hbgl_hf/hpt_hf cannot be imported: AutoModel.from_pretrained -> pushed with
    htc_tools (HfApi.upload_folder into a local fake hub) -> reloaded bit-exact. The card keeps what the saved
    folder's card said (base model, results, widget) and names the repo; its usage code runs as written."""
    taxonomy = load_dataset_dir(toy_dataset_dir)[1]
    model = hierarchical_model(model_type, tiny_encoder_dir, taxonomy)
    save_model_folder(model, tokenizer, tmp_path / "model", base_model="google-bert/bert-base-uncased",
                      dataset_name=str(toy_dataset_dir), results={"test_macro_f1": 0.5, "eval_micro_f1": 0.75},
                      license="mit", widget_texts=TEXTS[:2])
    root = tmp_path / "fake_hub"
    out = run_without_packages(PUSH_LOADED, str(tmp_path / "model"), str(root), str(TESTS), home=tmp_path,
                               blocked=MODEL_PACKAGES)
    assert out["imported"] == [] and out["exact"] and out["url"].endswith("/commit/1")
    assert len(out["commits"]) == 1 and out["validated"] == 1
    assert {"config.json", "model.safetensors", f"modeling_{model_type}.py", "hierarchical_pipeline.py",
            "tokenizer.json", "README.md"} <= set(out["commits"][0])
    pushed, saved = load_file(root / "me/tiny/model.safetensors"), load_file(tmp_path / "model/model.safetensors")
    assert pushed.keys() == saved.keys() and all(torch.equal(pushed[k], saved[k]) for k in saved)
    assert out["base_model"] == "google-bert/bert-base-uncased" and out["license"] == "mit"
    assert out["results"] == [["test", "macro_f1", 0.5], ["validation", "micro_f1", 0.75]]
    assert out["widget"] == [{"text": t} for t in TEXTS[:2]]
    assert 'model="me/tiny"' in out["text"] and "path/to/this/folder" not in out["text"]
    assert str(toy_dataset_dir) not in out["text"]  # a local dataset path is never written

    # the card's usage code, as written, in a process with none of our packages (the repo id resolves in root)
    run = run_without_packages(RUN_USAGE, usage_code(out["text"]), home=tmp_path, cwd=root)
    expected = hierarchical_pipeline(model, tokenizer)(TEXTS[:2], threshold=0.5, hierarchy_consistent=True)
    assert [[r["label"] for r in p] for p in run["predictions"]] == [[r["label"] for r in p] for p in expected]
    assert all(set(r) == {"label", "score", "path"} for p in run["predictions"] for r in p)
    enc = tokenizer(["a text"], return_tensors="pt")
    with torch.no_grad():
        assert run["probabilities"][0] == pytest.approx(model.decode(**enc).probabilities[0].tolist(), abs=1e-6)


@pytest.mark.parametrize("model_type", ["hbgl", "hpt"])
def test_trainer_checkpoints_load_with_the_hierarchical_pipeline(model_type: str, tiny_encoder_dir: Path,
                                                                 toy_dataset_dir: Path, tokenizer,
                                                                 tmp_path: Path) -> None:
    splits, taxonomy = load_dataset_dir(toy_dataset_dir)
    model = hierarchical_model(model_type, tiny_encoder_dir, taxonomy)
    tokenized = tokenize_dataset(splits, tokenizer, 32)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=1, save_strategy="steps", save_steps=1,
                             per_device_train_batch_size=4, use_cpu=True, report_to="none", disable_tqdm=True,
                             logging_strategy="no")
    trainer = HierarchicalTrainer(model=model, args=args, train_dataset=tokenized["train"],
                                  processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer))
    trainer.train()
    checkpoint = tmp_path / "out" / "checkpoint-1"
    assert (checkpoint / "hierarchical_pipeline.py").is_file()
    script = """
        from transformers import pipeline
        folder, texts = sys.argv[1], json.loads(sys.argv[2])
        named = pipeline("hierarchical-text-classification", model=folder, trust_remote_code=True)
        inferred = pipeline(model=folder, trust_remote_code=True)
        print(json.dumps({"named": named(texts), "inferred": inferred(texts)}))
    """
    out = run_without_packages(script, str(checkpoint), json.dumps(TEXTS), home=tmp_path)
    expected = hierarchical_pipeline(trainer.model.eval(), tokenizer)(TEXTS)
    assert out["named"] == out["inferred"]
    for got, want in zip(out["named"], expected, strict=True):
        assert [r["label"] for r in got] == [r["label"] for r in want]
        assert [r["path"] for r in got] == [r["path"] for r in want]
        assert [r["score"] for r in got] == pytest.approx([r["score"] for r in want], abs=1e-5)


FLAT_USAGE = """
    exec(sys.argv[1])
    print(json.dumps({"predicted": predicted, "scores": scores}))
"""


def test_flat_card_describes_a_flat_model_with_working_code(tiny_bert_config, toy_taxonomy, tokenizer,
                                                            tmp_path: Path) -> None:
    tiny_bert_config.num_labels = toy_taxonomy.num_labels
    tiny_bert_config.id2label = dict(enumerate(toy_taxonomy.labels))
    tiny_bert_config.label2id = toy_taxonomy.label2id
    tiny_bert_config.problem_type = "multi_label_classification"
    torch.manual_seed(0)
    flat = BertForSequenceClassification(tiny_bert_config).eval()
    with torch.no_grad():
        flat.classifier.bias.copy_(torch.linspace(-3, 3, toy_taxonomy.num_labels))  # some labels above 0.5
    save_model_folder(flat, tokenizer, tmp_path / "flat", results={"test_macro_f1": 0.25})
    card = ModelCard.load(tmp_path / "flat" / "README.md")
    assert "custom_code" not in card.data.tags and "flat" in card.data.tags
    assert "trust_remote_code" not in card.text and "hierarchical-text-classification\"" not in card.text
    assert "decode" not in card.text and 'model="flat"' in card.text and "Flat multi-label" in card.text
    out = run_without_packages(FLAT_USAGE, usage_code(card.text), home=tmp_path, cwd=tmp_path)
    enc = tokenizer(["first text", "second text"], padding=True, return_tensors="pt")
    with torch.no_grad():
        probabilities = torch.sigmoid(flat(**enc).logits)
    expected = [sorted(toy_taxonomy.labels[i] for i in torch.nonzero(row > 0.5).flatten()) for row in probabilities]
    assert [sorted(p) for p in out["predicted"]] == expected and any(expected)
    assert all(len(row) == toy_taxonomy.num_labels for row in out["scores"])


def test_a_loaded_model_keeps_its_card_but_never_stale_results(tiny_encoder_dir: Path, toy_taxonomy, tokenizer,
                                                               tmp_path: Path) -> None:
    model = hierarchical_model("hbgl", tiny_encoder_dir, toy_taxonomy)
    save_model_folder(model, tokenizer, tmp_path / "a", base_model="owner/encoder", results={"test_macro_f1": 0.5},
                      widget_texts=["the ball game"])
    loaded = AutoModel.from_pretrained(tmp_path / "a", trust_remote_code=True)
    save_model_folder(loaded, tokenizer, tmp_path / "b")
    kept = ModelCard.load(tmp_path / "b" / "README.md")
    assert kept.data.base_model == "owner/encoder" and kept.data.widget == [{"text": "the ball game"}]
    assert [(r.metric_name, r.metric_value) for r in kept.data.eval_results] == [("macro_f1", 0.5)]
    save_model_folder(loaded, tokenizer, tmp_path / "c", results={})  # e.g. trained further, not evaluated
    fresh = ModelCard.load(tmp_path / "c" / "README.md")
    assert fresh.data.eval_results is None and "Not evaluated." in fresh.text
    assert json.loads((tmp_path / "c" / "config.json").read_text())["custom_pipelines"]
