"""The HF integration: HierarchicalTrainer (decode-based evaluation, GA, HBGL's two stages), the run script
under 1 and 2 ranks, pipelines from a saved folder without the package, and an offline push_to_hub."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import fake_hub
import pytest
import torch
from conftest import run_without_packages
from safetensors.torch import load_file
from transformers import AutoModel, BertForSequenceClassification, DataCollatorWithPadding, TrainingArguments

from hbgl_hf import HBGLForHierarchicalClassification
from hpt_hf import HPTForHierarchicalClassification
from htc_tools.data import load_dataset_dir, tokenize_dataset
from htc_tools.hub import push_model_folder, save_model_folder
from htc_tools.trainer import HierarchicalTrainer
from htc_tools.training import make_compute_metrics

REPO = Path(__file__).resolve().parents[1]
RUN_SCRIPT = REPO / "examples" / "run_hierarchical_classification.py"
NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
# switches that make one training step deterministic (no random masking / corruption / dropout)
DETERMINISTIC = {"hbgl": {"target_mask_prob": 0.0, **NO_DROPOUT}, "hpt": {"mlm_loss_weight": 0.0, **NO_DROPOUT},
                 "flat": NO_DROPOUT}


def build(model_type: str, encoder: Path, taxonomy, **overrides: object):
    torch.manual_seed(0)
    if model_type == "flat":
        return BertForSequenceClassification.from_pretrained(
            encoder, num_labels=taxonomy.num_labels, problem_type="multi_label_classification",
            id2label=dict(enumerate(taxonomy.labels)), **overrides)
    cls = HBGLForHierarchicalClassification if model_type == "hbgl" else HPTForHierarchicalClassification
    return cls.from_encoder(str(encoder), list(taxonomy.labels), [list(p) for p in taxonomy.parents], **overrides)


def trainer_for(model, data, tokenizer, tmp_path: Path, model_init=None, **args: object) -> HierarchicalTrainer:
    splits, taxonomy = data
    tokenized = tokenize_dataset(splits, tokenizer, 32)
    defaults = {"output_dir": str(tmp_path / "out"), "use_cpu": True, "report_to": "none", "save_strategy": "no",
                "logging_strategy": "no", "disable_tqdm": True, "train_sampling_strategy": "sequential",
                "per_device_eval_batch_size": 3}
    return HierarchicalTrainer(
        model=model, model_init=model_init, args=TrainingArguments(**{**defaults, **args}),
        train_dataset=tokenized["train"], eval_dataset=tokenized["dev"], processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=make_compute_metrics(taxonomy))


def spread_scores(model, taxonomy) -> None:
    """Make labels fire (+4) except "science" (-8), whose children then fire as orphans."""
    offset = model.config.label_token_offset
    with torch.no_grad():
        model.cls.bias[offset : offset + taxonomy.num_labels] = 4.0
        model.cls.bias[offset + taxonomy.id("science")] = -8.0


@pytest.fixture
def toy_data(toy_dataset_dir: Path):
    return load_dataset_dir(toy_dataset_dir)


# ------------------------------------------------------------------ Trainer
@pytest.mark.parametrize("model_type", ["hbgl", "hpt", "flat"])
def test_gradient_accumulation_scales_like_the_full_batch(model_type: str, tiny_encoder_dir: Path, toy_data,
                                                          tokenizer, tmp_path: Path) -> None:
    """One SGD step at batch 4 x GA 1 equals batch 2 x GA 2 (no clipping, so a mis-scaled loss would show)."""
    params = {}
    for batch, accumulation in ((4, 1), (2, 2)):
        model = build(model_type, tiny_encoder_dir, toy_data[1], **DETERMINISTIC[model_type])
        before = {k: v.clone() for k, v in model.state_dict().items()}
        trainer_for(model, toy_data, tokenizer, tmp_path, optim="sgd", learning_rate=0.5, max_steps=1,
                    per_device_train_batch_size=batch, gradient_accumulation_steps=accumulation, max_grad_norm=0.0,
                    lr_scheduler_type="constant").train()
        params[batch] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    moved = max((params[4][k] - before[k]).abs().max().item() for k in before)
    assert moved > 1e-3  # the step did something
    for k in params[4]:
        torch.testing.assert_close(params[2][k], params[4][k], atol=1e-6, rtol=1e-5, msg=k)


@pytest.mark.parametrize("model_type", ["hbgl", "hpt"])
def test_evaluation_and_predict_go_through_decode(model_type: str, tiny_encoder_dir: Path, toy_data, tokenizer,
                                                  tmp_path: Path) -> None:
    model = build(model_type, tiny_encoder_dir, toy_data[1]).eval()
    trainer = trainer_for(model, toy_data, tokenizer, tmp_path, per_device_train_batch_size=4)
    assert trainer.args.metric_for_best_model == "macro_f1" and trainer.args.greater_is_better
    spread_scores(model, toy_data[1])  # some labels fire, so the comparison is not all-zero
    output = trainer.predict(trainer.eval_dataset)
    selected, probabilities = output.predictions
    batch = DataCollatorWithPadding(tokenizer)([trainer.eval_dataset[i] for i in range(len(trainer.eval_dataset))])
    decoded = model.decode(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
    assert selected.shape == (len(trainer.eval_dataset), toy_data[1].num_labels)
    assert (selected == decoded.selected.float().numpy()).all() and selected.any() and not selected.all()
    assert probabilities == pytest.approx(decoded.probabilities.numpy(), abs=1e-6)
    assert {"test_micro_f1", "test_macro_f1", "test_hier_f1", "test_inconsistency_rate", "test_loss"} <= set(
        output.metrics)


def test_best_model_is_chosen_by_macro_f1_unless_the_loss_is_asked_for(tiny_encoder_dir: Path, toy_data, tokenizer,
                                                                       tmp_path: Path) -> None:
    """TrainingArguments fills in metric_for_best_model="loss" for load_best_model_at_end; the paper selects by
    macro-F1. An explicit choice of the loss in the script (any flag form) is kept; without one it is macro-F1."""
    model = build("hpt", tiny_encoder_dir, toy_data[1])
    common = {"load_best_model_at_end": True, "eval_strategy": "epoch", "save_strategy": "epoch"}
    assert trainer_for(model, toy_data, tokenizer, tmp_path, **common).args.metric_for_best_model == "macro_f1"
    chosen = trainer_for(model, toy_data, tokenizer, tmp_path, metric_for_best_model="eval_loss", **common).args
    assert (chosen.metric_for_best_model, chosen.greater_is_better) == ("eval_loss", False)
    sys.path.insert(0, str(REPO / "examples"))
    from run_hierarchical_classification import parse_arguments

    for flag in (["--metric_for_best_model=loss"], ["--metric_for_best_model", "loss"], ["--metric_for_best", "loss"],
                 ["--metric_for_best_m=loss"]):  # argparse takes abbreviations too
        args = parse_arguments(["--output_dir", str(tmp_path / "o"), "--load_best_model_at_end", "--eval_strategy",
                                "epoch", "--save_strategy", "epoch", *flag])[2]
        assert args.metric_for_best_model == "eval_loss"
    args = parse_arguments(["--output_dir", str(tmp_path / "o"), "--load_best_model_at_end", "--eval_strategy",
                            "epoch", "--save_strategy", "epoch"])[2]
    assert args.metric_for_best_model == "loss"  # TrainingArguments' fill-in, which HierarchicalTrainer reads as unset


def test_label_pretraining_runs_on_the_model_that_model_init_builds(tiny_encoder_dir: Path, toy_data, tokenizer,
                                                                   tmp_path: Path) -> None:
    """With model_init the Trainer re-creates the model in train(): the stage must train that model's label rows."""
    trainer = trainer_for(None, toy_data, tokenizer, tmp_path, max_steps=1, learning_rate=0.0,
                          per_device_train_batch_size=4,
                          model_init=lambda: build("hbgl", tiny_encoder_dir, toy_data[1]))
    trainer.label_pretraining_steps, trainer.label_pretraining_batch_size = 2, 2
    output = trainer.train()
    fresh = build("hbgl", tiny_encoder_dir, toy_data[1])
    rows = fresh.label_columns
    assert len(trainer.label_pretraining_losses) == 2
    assert output.metrics["label_pretraining_runtime"] > 0
    table = "bert.embeddings.word_embeddings.weight"
    assert not torch.equal(trainer.model.state_dict()[table][rows], fresh.state_dict()[table][rows])


def test_hbgl_two_stages_in_one_train_call(tiny_encoder_dir: Path, toy_data, tokenizer, tmp_path: Path) -> None:
    model = build("hbgl", tiny_encoder_dir, toy_data[1])
    rows = model.label_columns
    before = model.bert.embeddings.word_embeddings.weight.detach().clone()
    encoder_before = model.bert.encoder.layer[0].attention.self.query.weight.detach().clone()
    trainer = trainer_for(model, toy_data, tokenizer, tmp_path, max_steps=2, per_device_train_batch_size=4)
    trainer.label_pretraining_steps = 3
    trainer.label_pretraining_batch_size = 2
    output = trainer.train()
    assert len(trainer.label_pretraining_losses) == 3
    after = model.bert.embeddings.word_embeddings.weight.detach()
    assert not torch.equal(after[rows], before[rows])
    assert all(p.requires_grad for p in model.parameters())  # unfrozen for stage 2, which then trained the encoder
    assert not torch.equal(model.bert.encoder.layer[0].attention.self.query.weight, encoder_before)
    # the stage's time is reported beside the Trainer's train_runtime (which counts fine-tuning only), and logged
    assert 0 < output.metrics["label_pretraining_runtime"] == trainer.label_pretraining_runtime
    assert trainer.state.log_history[-1]["label_pretraining_runtime"] == trainer.label_pretraining_runtime
    trainer.label_pretraining_steps = 0
    assert "label_pretraining_runtime" not in trainer.train().metrics  # no stage ran: no stale time either
    assert trainer.label_pretraining_losses == []


# ------------------------------------------------------------------ run script: 1 rank and 2 ranks (DDP on CPU)
def run_script(args: list[str], ranks: int, cwd: Path) -> subprocess.CompletedProcess:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks), "--master_port",
                 str(29500 + os.getpid() % 1000)] if ranks > 1 else [sys.executable])
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(REPO)}
    result = subprocess.run([*launcher, str(RUN_SCRIPT), *args], capture_output=True, text=True, env=env, cwd=cwd,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


@pytest.mark.parametrize("model_type", ["hbgl", "hpt", "flat"])
def test_two_ranks_end_with_the_parameters_of_one_rank(model_type: str, tiny_encoder_dir: Path,
                                                       toy_dataset_dir: Path, tmp_path: Path) -> None:
    overrides = ",".join(f"{k}={v}" for k, v in DETERMINISTIC[model_type].items())
    common = ["--model_type", model_type, "--model_name_or_path", str(tiny_encoder_dir), "--dataset_dir",
              str(toy_dataset_dir), "--config_overrides", overrides, "--do_train", "--do_eval", "--do_predict",
              "--max_steps", "2", "--optim", "sgd", "--learning_rate", "0.5", "--max_grad_norm", "0",
              "--lr_scheduler_type", "constant", "--train_sampling_strategy", "sequential", "--seed", "7",
              "--max_seq_length", "32", "--per_device_eval_batch_size", "3", "--save_strategy", "no",
              "--report_to", "none", "--disable_tqdm", "true", "--label_pretraining_steps", "0"]
    run_script([*common, "--output_dir", str(tmp_path / "one"), "--per_device_train_batch_size", "4"], 1, tmp_path)
    run_script([*common, "--output_dir", str(tmp_path / "two"), "--per_device_train_batch_size", "2"], 2, tmp_path)
    one, two = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    assert one.keys() == two.keys()
    for k in one:  # tolerance: float32 all-reduce of 2 partial means vs 1 full mean
        torch.testing.assert_close(two[k], one[k], atol=1e-5, rtol=1e-4, msg=k)
    for run in ("one", "two"):
        results = json.loads((tmp_path / run / "all_results.json").read_text())
        assert {"eval_micro_f1", "eval_macro_f1", "test_micro_f1", "test_macro_f1", "test_hier_f1"} <= set(results)
        predictions = (tmp_path / run / "test_predictions.jsonl").read_text().splitlines()
        assert len(predictions) == 8 and set(json.loads(predictions[0])) == {"text", "labels", "scores", "paths"}
        for line in map(json.loads, predictions):  # a root-to-label path per label, ending at the label
            assert [p[-1] for p in line["paths"]] == line["labels"] and all(len(p) >= 1 for p in line["paths"])
    assert "HierarchicalTextClassificationPipeline" in (tmp_path / "two" / "config.json").read_text() or (
        model_type == "flat")
    from huggingface_hub import ModelCard

    card = ModelCard.load(tmp_path / "one" / "README.md")  # the run's card: widget from the training texts, results
    train_texts = [json.loads(line)["text"] for line in (toy_dataset_dir / "train.jsonl").read_text().splitlines()]
    assert card.data.widget == [{"text": t} for t in train_texts[:3]] and str(toy_dataset_dir) not in card.content
    assert {(r.dataset_split, r.metric_name) for r in card.data.eval_results} >= {("validation", "macro_f1"),
                                                                                  ("test", "micro_f1")}
    assert 'model="one"' in card.text and card.data.datasets is None


def test_hbgl_two_stages_under_two_ranks(tiny_encoder_dir: Path, toy_dataset_dir: Path, tmp_path: Path) -> None:
    args = ["--model_type", "hbgl", "--model_name_or_path", str(tiny_encoder_dir), "--dataset_dir",
            str(toy_dataset_dir), "--do_train", "--max_steps", "2", "--per_device_train_batch_size", "2",
            "--label_pretraining_steps", "3", "--label_pretraining_batch_size", "2", "--save_strategy", "no",
            "--report_to", "none", "--disable_tqdm", "true", "--max_seq_length", "32", "--seed", "7"]
    run_script([*args, "--output_dir", str(tmp_path / "two")], 2, tmp_path)
    run_script([*args, "--output_dir", str(tmp_path / "plain"), "--label_pretraining_steps", "0"], 1, tmp_path)
    two = load_file(tmp_path / "two" / "model.safetensors")
    plain = load_file(tmp_path / "plain" / "model.safetensors")
    table = "bert.embeddings.word_embeddings.weight"
    offset = json.loads((tmp_path / "two" / "config.json").read_text())["label_token_offset"]
    assert not torch.allclose(two[table][offset:], plain[table][offset:])  # stage 1 moved the label rows
    assert all(torch.isfinite(v).all() for v in two.values())


# ------------------------------------------------------------------ pipelines from a saved folder, no package
PIPELINES = """
    import torch
    from transformers import AutoModel, AutoTokenizer, pipeline
    folder, texts = sys.argv[1], json.loads(sys.argv[2])
    stock = pipeline("text-classification", model=folder, trust_remote_code=True, top_k=None,
                     function_to_apply="sigmoid")
    hier = pipeline("hierarchical-text-classification", model=folder, trust_remote_code=True)
    assert type(hier).__module__.startswith("transformers_modules"), type(hier).__module__
    inferred = pipeline(model=folder, trust_remote_code=True)  # the one custom pipeline is the folder's task
    print(json.dumps({
        "stock": stock(texts), "hier": hier(texts), "batched": hier(texts, batch_size=2),
        "strict": hier(texts, threshold=0.9), "consistent": hier(texts, hierarchy_consistent=True),
        "all_scores": hier(texts[:1], return_all_scores=True), "inferred": inferred(texts),
    }))
"""


@pytest.mark.parametrize("model_type", ["hbgl", "hpt"])
def test_stock_and_hierarchical_pipelines_from_a_saved_folder(model_type: str, tiny_encoder_dir: Path, toy_data,
                                                              tokenizer, tmp_path: Path) -> None:
    taxonomy = toy_data[1]
    model = build(model_type, tiny_encoder_dir, taxonomy).eval()
    spread_scores(model, taxonomy)
    save_model_folder(model, tokenizer, tmp_path / "model", base_model="tiny", dataset_name="toy")
    texts = ["the team won the ball game", "a gene in the cell", "the band and the song"]
    out = run_without_packages(PIPELINES, str(tmp_path / "model"), json.dumps(texts), home=tmp_path)
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(enc["input_ids"], enc["attention_mask"]).logits
        decoded = model.decode(enc["input_ids"], enc["attention_mask"])
        consistent = model.decode(enc["input_ids"], enc["attention_mask"], hierarchy_consistent=True).selected
        strict = model.decode(enc["input_ids"], enc["attention_mask"], threshold=0.9).selected
    for i, scores in enumerate(out["stock"]):  # (a) stock pipeline: every label, sigmoid of the flat logits
        by_name = {s["label"]: s["score"] for s in scores}
        assert len(by_name) == taxonomy.num_labels
        assert [by_name[n] for n in taxonomy.labels] == pytest.approx(torch.sigmoid(logits[i]).tolist(), abs=1e-5)
    for key, expected in (("hier", decoded.selected), ("strict", strict), ("consistent", consistent)):
        for i, result in enumerate(out[key]):  # (b) the hierarchical pipeline = decode(), in the HF shape
            assert all(set(r) == {"label", "score", "path"} for r in result), key
            assert sorted(r["label"] for r in result) == sorted(
                taxonomy.labels[j] for j in torch.nonzero(expected[i]).flatten()), key
            assert [r["score"] for r in result] == sorted((r["score"] for r in result), reverse=True), key
    assert out["batched"] == out["hier"] and out["inferred"] == out["hier"]
    first = out["hier"][0]
    assert first and [r["score"] for r in first] == pytest.approx(
        [decoded.probabilities[0, taxonomy.id(r["label"])].item() for r in first], abs=1e-5)
    for r in first:
        assert r["path"][-1] == r["label"] and r["path"][0] in {taxonomy.labels[i] for i in taxonomy.top_level}
        assert [taxonomy.id(n) for n in r["path"]] in [list(p) for p in taxonomy.paths(taxonomy.id(r["label"]))]
    every = out["all_scores"][0]  # every label, each with its selection
    assert sorted(r["label"] for r in every) == sorted(taxonomy.labels)
    assert {r["label"] for r in every if r["selected"]} == {r["label"] for r in first}
    assert sum(map(len, out["consistent"])) < sum(map(len, out["hier"]))


SHIPPED_COPIES = {"hierarchical_pipeline.py": ("hbgl_hf", "hpt_hf", "htc_tools/embed_lr"),
                  "thresholds.py": ("hbgl_hf", "hpt_hf", "htc_tools/embed_lr"),
                  "encoder_backbone.py": ("hbgl_hf", "hpt_hf"), "hierarchy_index.py": ("hbgl_hf", "hpt_hf")}


@pytest.mark.parametrize("name", sorted(SHIPPED_COPIES))
def test_shipped_copies_are_identical(name: str) -> None:
    """Each self-contained model package ships its own copy of these modules; the copies must not drift."""
    copies = {(REPO / folder / name).read_bytes() for folder in SHIPPED_COPIES[name]}
    assert len(copies) == 1, name


# ------------------------------------------------------------------ push_to_hub, offline (tests/fake_hub.py)
@pytest.mark.parametrize("model_type", ["hbgl", "hpt"])
def test_push_to_hub_round_trip(model_type: str, tiny_encoder_dir: Path, toy_data, tokenizer, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import ModelCard

    hub = fake_hub.install(tmp_path / "fake_hub", monkeypatch.setattr)
    model = build(model_type, tiny_encoder_dir, toy_data[1]).eval()
    url = push_model_folder(model, tokenizer, "me/tiny", base_model="google-bert/bert-base-uncased",
                            dataset_name="toy", results={"test_macro_f1": 0.5, "test_micro_f1": 0.75})
    assert url.endswith("/commit/1") and len(hub.commits) == 1 and hub.validated == 1  # everything in one commit
    files = set(hub.commits[0])
    assert {"config.json", "model.safetensors", f"modeling_{model_type}.py", f"configuration_{model_type}.py",
            "hierarchical_pipeline.py", "tokenizer.json", "tokenizer_config.json", "README.md"} <= files
    pushed = tmp_path / "fake_hub" / "me" / "tiny"
    again = AutoModel.from_pretrained(pushed, trust_remote_code=True)
    a, b = model.state_dict(), again.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    card = ModelCard.load(pushed / "README.md")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-classification"
    assert {"hierarchical-text-classification", model_type} <= set(card.data.tags)
    assert card.data.base_model == "google-bert/bert-base-uncased" and card.data.datasets == ["toy"]
    assert "trust_remote_code=True" in card.text and "Hierarchy-aware Prompt Tuning" in card.text
    assert "Exploiting Global and Local Hierarchies" in card.text and "| test_macro_f1 | 0.5000 |" in card.text
    assert 'model="me/tiny"' in card.text and "path/to/this/folder" not in card.text
    assert {(r.dataset_split, r.metric_name, r.metric_value) for r in card.data.eval_results} == {
        ("test", "macro_f1", 0.5), ("test", "micro_f1", 0.75)}


@pytest.mark.parametrize("model_type", ["hbgl", "hpt"])
def test_training_after_inference_mode_prediction(model_type: str, tiny_encoder_dir: Path, toy_data) -> None:
    """Index tensors first built under torch.inference_mode (as a pipeline does) must not break training."""
    model = build(model_type, tiny_encoder_dir, toy_data[1])
    ids, mask = torch.tensor([[2, 10, 11, 3]]), torch.ones(1, 4, dtype=torch.long)
    with torch.inference_mode():
        model.eval().decode(ids, mask)
    labels = torch.zeros(1, toy_data[1].num_labels)
    labels[0, 0] = 1
    model.train()(ids, mask, labels=labels).loss.backward()
    assert model.bert.embeddings.word_embeddings.weight.grad is not None


# ------------------------------------------------------------------ flat baseline: head bias at the label priors
def test_label_prior_logits_are_smoothed_log_odds() -> None:
    from htc_tools.training import label_prior_logits

    rows = [[1, 0, 1], [1, 0, 0], [1, 1, 0], [0, 0, 0]]
    expected = [math.log((n + 1) / (len(rows) - n + 1)) for n in (3, 1, 1)]  # add-one smoothed counts
    assert torch.allclose(label_prior_logits(rows), torch.tensor(expected, dtype=torch.float64))


def test_flat_head_bias_starts_at_the_priors_only_when_the_head_is_new(tiny_encoder_dir: Path, toy_data, tokenizer,
                                                                      tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "examples"))
    from run_hierarchical_classification import ModelArguments, build_model

    from htc_tools.training import label_prior_logits

    splits, taxonomy = toy_data
    train_labels = splits["train"]["labels"]
    priors = label_prior_logits(train_labels).float()
    args = ModelArguments(model_type="flat", model_name_or_path=str(tiny_encoder_dir))
    model = build_model(args, taxonomy, tokenizer, str(tiny_encoder_dir), train_labels)
    assert torch.equal(model.classifier.bias.detach(), priors)
    stock = build_model(ModelArguments(model_type="flat", classifier_bias_init="zero"), taxonomy, tokenizer,
                        str(tiny_encoder_dir), train_labels)
    assert torch.equal(stock.classifier.bias.detach(), torch.zeros_like(priors))
    # a trained head (loaded from a flat folder) keeps its bias
    with torch.no_grad():
        model.classifier.bias.fill_(0.25)
    model.save_pretrained(tmp_path / "flat")
    again = build_model(args, taxonomy, tokenizer, str(tmp_path / "flat"), train_labels)
    assert torch.equal(again.classifier.bias.detach(), torch.full_like(priors, 0.25))


@pytest.mark.parametrize("model_type", ["hbgl", "hpt", "flat"])
def test_cli_trains_and_predicts_under_bf16_on_cpu(model_type: str, tiny_encoder_dir: Path, toy_dataset_dir: Path,
                                                  tmp_path: Path) -> None:
    """``--bf16`` (the Trainer's CPU autocast) through fine-tuning, HBGL's label pre-training, evaluation and
    prediction; the saved weights stay float32."""
    sys.path.insert(0, str(REPO / "examples"))
    from run_hierarchical_classification import main as run

    out = tmp_path / "out"
    results = run(["--model_type", model_type, "--model_name_or_path", str(tiny_encoder_dir), "--dataset_dir",
                   str(toy_dataset_dir), "--output_dir", str(out), "--do_train", "--do_eval", "--do_predict",
                   "--max_steps", "2", "--per_device_train_batch_size", "4", "--max_seq_length", "32",
                   "--label_pretraining_steps", "2", "--label_pretraining_batch_size", "2", "--bf16",
                   "--use_cpu", "--report_to", "none", "--disable_tqdm", "true"])
    assert {"eval_macro_f1", "test_micro_f1"} <= set(results)
    config = json.loads((out / "config.json").read_text())
    assert config.get("dtype", config.get("torch_dtype")) in (None, "float32")
