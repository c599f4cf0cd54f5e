"""The run script's checks before it loads a model (issue #16, items 1, 4 and 10): a non-empty --output_dir,
the splits the flags need, --config_overrides keys and a trained folder's hierarchy."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from transformers import BertForSequenceClassification

from hbgl_hf import HBGLForHierarchicalClassification
from hpt_hf import HPTForHierarchicalClassification
from htc_tools.taxonomy import Taxonomy

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples"))
from run_hierarchical_classification import ModelArguments, build_model, main  # noqa: E402

QUICK = ["--max_steps", "1", "--per_device_train_batch_size", "4", "--max_seq_length", "16", "--report_to", "none",
         "--disable_tqdm", "true", "--use_cpu", "true", "--logging_strategy", "no",
         "--label_pretraining_steps", "0"]


def run(encoder: Path, data: Path, out: Path, *extra: str) -> dict[str, float]:
    return main(["--model_type", "flat", "--model_name_or_path", str(encoder), "--dataset_dir", str(data),
                 "--output_dir", str(out), *QUICK, *extra])


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ item 1: --output_dir
def test_a_second_run_into_the_same_output_dir_stops_and_overwrite_leaves_only_the_new_run(
        tiny_encoder_dir: Path, toy_dataset_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = ["--do_train", "--do_predict", "--save_strategy", "steps", "--save_steps", "1"]
    run(tiny_encoder_dir, toy_dataset_dir, out, *first)
    before = _files(out)
    assert {"model.safetensors", "all_results.json", "test_predictions.jsonl", "README.md"} <= set(before)
    assert any(name.startswith("checkpoint-1/") for name in before)
    with pytest.raises(FileExistsError, match=r"is not empty .* pass --overwrite_output_dir to replace its contents, "
                                              r"--resume_from_checkpoint last to continue from checkpoint-1"):
        run(tiny_encoder_dir, toy_dataset_dir, out, *first)
    assert _files(out) == before  # nothing written by the refused run
    (out / "notes").mkdir()  # something no run writes: --overwrite_output_dir must not delete it
    with pytest.raises(FileExistsError, match=r"holds notes, which no run of this script wrote"):
        run(tiny_encoder_dir, toy_dataset_dir, out, "--do_train", "--overwrite_output_dir")
    (out / "notes").rmdir()
    results = run(tiny_encoder_dir, toy_dataset_dir, out, "--do_train", "--do_eval", "--save_strategy", "no",
                  "--overwrite_output_dir")
    after = _files(out)
    assert "test_predictions.jsonl" not in after and not any(n.startswith("checkpoint-") for n in after)
    assert json.loads(after["all_results.json"]) == results and "eval_macro_f1" in results
    assert not any(k.startswith("test_") for k in results)


def test_resume_from_the_last_checkpoint_of_the_output_dir(tiny_encoder_dir: Path, toy_dataset_dir: Path,
                                                           tmp_path: Path) -> None:
    out = tmp_path / "run"
    run(tiny_encoder_dir, toy_dataset_dir, out, "--do_train", "--save_strategy", "steps", "--save_steps", "1")
    run(tiny_encoder_dir, toy_dataset_dir, out, "--do_train", "--save_strategy", "steps", "--save_steps", "1",
        "--max_steps", "2", "--resume_from_checkpoint", "last")
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2 and (out / "checkpoint-1").is_dir()  # continued, not restarted


@pytest.mark.parametrize(("extra", "error", "message"), [
    (["--resume_from_checkpoint", "last"], FileNotFoundError, r"no checkpoint-N folder in --output_dir"),
    (["--resume_from_checkpoint", "nowhere/checkpoint-3"], FileNotFoundError, r"no such checkpoint folder"),
    (["--resume_from_checkpoint", "last", "--overwrite_output_dir"], ValueError, r"exclude each other"),
], ids=["last_without_checkpoint", "missing_path", "with_overwrite"])
def test_resume_errors(tiny_encoder_dir: Path, toy_dataset_dir: Path, tmp_path: Path, extra: list[str],
                       error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        run(tiny_encoder_dir, toy_dataset_dir, tmp_path / "new", "--do_train", *extra)


def test_overwrite_never_deletes_the_inputs(tiny_encoder_dir: Path, toy_dataset_dir: Path) -> None:
    before = _files(toy_dataset_dir)
    with pytest.raises(ValueError, match=r"would delete --dataset_dir .* which lies in --output_dir"):
        run(tiny_encoder_dir, toy_dataset_dir, toy_dataset_dir.parent, "--do_train", "--overwrite_output_dir")
    assert _files(toy_dataset_dir) == before


# ------------------------------------------------------------------ item 10: splits, before the model loads
@pytest.mark.parametrize(("missing", "flags", "message"), [
    ("dev", ["--do_eval"], r"--do_eval need\(s\) the dev split, but .* has no dev\.jsonl / val\.jsonl / "
                           r"validation\.jsonl"),
    ("dev", ["--eval_strategy", "epoch"], r"--eval_strategy epoch need\(s\) the dev split"),
    ("test", ["--do_predict"], r"--do_predict need\(s\) the test split, but .* has no test\.jsonl"),
])
def test_a_requested_split_without_its_file_is_an_error_before_loading(toy_dataset_dir: Path, tmp_path: Path,
                                                                       missing: str, flags: list[str],
                                                                       message: str) -> None:
    (toy_dataset_dir / f"{missing}.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match=message):  # the encoder path does not exist: nothing was loaded
        run(tmp_path / "no-encoder", toy_dataset_dir, tmp_path / "out", "--do_train", *flags)


@pytest.mark.parametrize(("model_type", "overrides", "message"), [
    ("hbgl", "los_columns=all", r"unknown key\(s\) 'los_columns' \(did you mean 'loss_columns'\?\) for --model_type "
                                r"hbgl \(fields of HBGLConfig\)"),
    ("hpt", "hidden_dropout_prob=0,zmlce=x", r"unknown key\(s\) 'zmlce'"),
    ("flat", "classifer_dropout=0.1", r"'classifer_dropout' \(did you mean 'classifier_dropout'\?\)"),
])
def test_an_unknown_config_override_is_named_before_the_model_loads(tiny_encoder_dir: Path, toy_taxonomy: Taxonomy,
                                                                    tokenizer, model_type: str, overrides: str,
                                                                    message: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(HBGLForHierarchicalClassification, "from_encoder", no_loading)
    monkeypatch.setattr(HPTForHierarchicalClassification, "from_encoder", no_loading)
    monkeypatch.setattr("transformers.AutoModelForSequenceClassification.from_pretrained", no_loading)
    args = ModelArguments(model_type=model_type, model_name_or_path=str(tiny_encoder_dir), config_overrides=overrides)
    with pytest.raises(ValueError, match=message):
        build_model(args, toy_taxonomy, tokenizer, str(tiny_encoder_dir))


def test_known_config_overrides_reach_the_model(tiny_encoder_dir: Path, toy_taxonomy: Taxonomy, tokenizer) -> None:
    args = ModelArguments(model_type="hbgl", model_name_or_path=str(tiny_encoder_dir),
                          config_overrides="loss_columns=all,hidden_dropout_prob=0,attn_implementation=eager")
    model = build_model(args, toy_taxonomy, tokenizer, str(tiny_encoder_dir))
    assert model.config.loss_columns == "all" and model.config.hidden_dropout_prob == 0
    assert model.config._attn_implementation == "eager"  # a constructor keyword, not a stored field


# ------------------------------------------------------------------ item 4: continuing from a trained folder
def _reparented(taxonomy: Taxonomy) -> Taxonomy:
    """The same names in the same id order, with 'genes' moved from 'biology' to 'chemistry'."""
    moved = Taxonomy.from_dict({"Root": ["sports", "science", "arts"], "sports": ["ball", "track"],
                                "science": ["chemistry", "biology"], "arts": ["music"],
                                "chemistry": ["biochem", "genes"], "biology": ["biochem"]})
    assert moved.labels == taxonomy.labels and moved.parents != taxonomy.parents
    return moved


def test_a_trained_folder_with_other_parents_is_rejected(tiny_encoder_dir: Path, toy_taxonomy: Taxonomy, tokenizer,
                                                         tmp_path: Path) -> None:
    args = ModelArguments(model_type="hbgl", model_name_or_path=str(tiny_encoder_dir))
    build_model(args, toy_taxonomy, tokenizer, str(tiny_encoder_dir)).save_pretrained(tmp_path / "trained")
    again = ModelArguments(model_type="hbgl", model_name_or_path=str(tmp_path / "trained"))
    assert build_model(again, toy_taxonomy, tokenizer, str(tmp_path / "trained")).config.label_parents
    with pytest.raises(ValueError, match=r"trained on another hierarchy than the taxonomy given: label 'genes' has "
                                         r"parents \['biology'\] in the model but \['chemistry'\] in the taxonomy"):
        build_model(again, _reparented(toy_taxonomy), tokenizer, str(tmp_path / "trained"))


def test_a_trained_flat_folder_with_other_label_names_is_rejected(tiny_encoder_dir: Path, toy_taxonomy: Taxonomy,
                                                                  tokenizer, tmp_path: Path) -> None:
    torch.manual_seed(0)
    names = list(toy_taxonomy.labels)
    names[3] = "football"
    BertForSequenceClassification.from_pretrained(
        tiny_encoder_dir, num_labels=len(names), problem_type="multi_label_classification",
        id2label=dict(enumerate(names))).save_pretrained(tmp_path / "flat")
    args = ModelArguments(model_type="flat", model_name_or_path=str(tmp_path / "flat"))
    with pytest.raises(ValueError, match=r"trained on other labels than the taxonomy's: 1 label\(s\) only in the "
                                         r"taxonomy \['ball'\], 1 only in the model \['football'\]"):
        build_model(args, toy_taxonomy, tokenizer, str(tmp_path / "flat"))
