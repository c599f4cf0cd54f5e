"""The training CLI's defaults are the recipe measured in BENCHMARKS.md (issue #14 item 2), not the Trainer's, and
every flag still overrides them."""

from __future__ import annotations

import logging
from pathlib import Path

from transformers import AutoConfig, TrainingArguments

from htc_tools.cli.train import (
    ModelArguments,
    build_model,
    main,
    parse_arguments,
    recipe_label_learning_rate_factor,
    resolve_label_pretraining_steps,
)
from htc_tools.taxonomy import Taxonomy


def test_the_cli_defaults_are_the_recipe_not_the_trainers(tmp_path: Path) -> None:
    _, _, args = parse_arguments(["--output_dir", str(tmp_path)])
    stock = TrainingArguments(output_dir=str(tmp_path))
    assert (stock.num_train_epochs, stock.per_device_train_batch_size, stock.learning_rate) == (3.0, 8, 5e-5)
    assert (args.num_train_epochs, args.per_device_train_batch_size, args.warmup_steps) == (10.0, 16, 0.05)
    assert args.learning_rate == 5e-4  # the default encoder is the embedded MiniLM, where 5e-4 was measured


def test_the_recipes_learning_rate_applies_to_the_embedded_encoder_only_and_flags_win(tmp_path: Path) -> None:
    out = ["--output_dir", str(tmp_path)]
    assert parse_arguments([*out, "--model_name_or_path", "bert-base-uncased"])[2].learning_rate == 5e-5
    for given in (["--learning_rate", "2e-5"], ["--learning_rate=2e-5"], ["--learning_r", "2e-5"]):
        assert parse_arguments([*out, *given])[2].learning_rate == 2e-5
    args = parse_arguments([*out, "--num_train_epochs", "2", "--per_device_train_batch_size", "4",
                            "--warmup_steps", "0"])[2]
    assert (args.num_train_epochs, args.per_device_train_batch_size, args.warmup_steps) == (2.0, 4, 0)


def test_the_learning_rate_is_resolved_before_training_arguments_are_built(tmp_path: Path, monkeypatch) -> None:
    """TrainingArguments.__post_init__ copies the rate on (e.g. into a DeepSpeed config's "auto" entries): it must
    see the resolved rate, not a placeholder."""
    seen = []
    post_init = TrainingArguments.__post_init__

    def recording(self) -> None:
        seen.append(self.learning_rate)
        post_init(self)

    monkeypatch.setattr(TrainingArguments, "__post_init__", recording)
    parse_arguments(["--output_dir", str(tmp_path)])
    parse_arguments(["--output_dir", str(tmp_path), "--model_name_or_path", "bert-base-uncased"])
    assert seen == [5e-4, 5e-5]


def test_hbgl_pretrains_the_label_rows_of_a_new_model_only(tiny_encoder_dir: Path, toy_taxonomy: Taxonomy, tokenizer,
                                                           tmp_path: Path) -> None:
    encoder = AutoConfig.from_pretrained(tiny_encoder_dir)
    new = ModelArguments(model_type="hbgl", model_name_or_path=str(tiny_encoder_dir))
    assert resolve_label_pretraining_steps(new, encoder) == 100
    build_model(new, toy_taxonomy, tokenizer, str(tiny_encoder_dir)).save_pretrained(tmp_path / "trained")
    trained = AutoConfig.from_pretrained(tmp_path / "trained", trust_remote_code=True)
    again = ModelArguments(model_type="hbgl", model_name_or_path=str(tmp_path / "trained"))
    assert resolve_label_pretraining_steps(again, trained) == 0  # its label rows are trained already
    assert resolve_label_pretraining_steps(ModelArguments(model_type="hpt"), encoder) == 0
    for steps in (0, 7):  # an explicit count wins, on a new model and on a trained one
        for config in (encoder, trained):
            chosen = ModelArguments(model_type="hbgl", label_pretraining_steps=steps)
            assert resolve_label_pretraining_steps(chosen, config) == steps


def test_the_cli_runs_the_default_label_pretraining_stage(tiny_encoder_dir: Path, toy_dataset_dir: Path,
                                                          tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="htc_tools.trainer")
    main(["--model_type", "hbgl", "--model_name_or_path", str(tiny_encoder_dir), "--dataset_dir", str(toy_dataset_dir),
          "--output_dir", str(tmp_path / "out"), "--do_train", "--max_steps", "1", "--max_seq_length", "16",
          "--label_pretraining_batch_size", "2", "--save_strategy", "no", "--report_to", "none",
          "--disable_tqdm", "true", "--use_cpu", "true"])
    assert "HBGL stage 1: 100 steps of label-embedding pre-training" in caplog.text


def test_the_recipes_label_row_rate_is_10x_for_hbgl_and_hpt_on_the_embedded_encoder_only(tmp_path: Path) -> None:
    """The label rows' default is 10x --learning_rate where the recipe was measured (HBGL/HPT on the embedded
    encoder; HierarchicalTrainer applies it where it can, tests/test_learning_rates.py); a given flag wins."""
    def factor(*argv: str) -> float | None:
        return recipe_label_learning_rate_factor(parse_arguments(["--output_dir", str(tmp_path), *argv])[0])

    assert factor() == factor("--model_type", "hpt") == factor("--learning_rate", "1e-4") == 10.0
    assert factor("--model_type", "flat") is None and factor("--model_type", "embed_lr") is None
    assert factor("--model_name_or_path", "bert-base-uncased") is None  # not measured there
    for given in (["--label_learning_rate", "5e-4"], ["--label_learning_r=5e-4"]):
        assert factor(*given) is None  # the flag's rate, e.g. the encoder's as before the recipe
