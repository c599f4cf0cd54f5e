"""Learning rates per parameter group: the label rows of HBGL's and HPT's word-embedding table at
``label_learning_rate`` (htc_tools.learning_rates), checked against plain AdamW runs at that rate."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainingArguments

from hbgl_hf import HBGLForHierarchicalClassification
from hpt_hf import HPTForHierarchicalClassification
from htc_tools.trainer import HierarchicalTrainer

REPO = Path(__file__).resolve().parents[1]
CLASSES = {"hbgl": HBGLForHierarchicalClassification, "hpt": HPTForHierarchicalClassification}


def table_after_steps(model_type: str, encoder_dir: Path, taxonomy, out: Path, learning_rate: float,
                      label_learning_rate: float | None, steps: int = 4,
                      label_learning_rate_factor: float | None = None, **model_kwargs) -> torch.Tensor:
    """The word-embedding table after ``steps`` AdamW steps (weight decay 0.1, 2 warm-up steps from rate 0, then
    linear decay) on the same fixed gradients for every parameter, from the same start."""
    torch.manual_seed(0)
    model = CLASSES[model_type].from_encoder(str(encoder_dir), list(taxonomy.labels),
                                             [list(p) for p in taxonomy.parents], **model_kwargs)
    args = TrainingArguments(output_dir=str(out), learning_rate=learning_rate, weight_decay=0.1, warmup_steps=2,
                             report_to="none", use_cpu=True)
    trainer = HierarchicalTrainer(model=model, args=args, label_learning_rate=label_learning_rate,
                                  label_learning_rate_factor=label_learning_rate_factor)
    trainer.create_optimizer_and_scheduler(num_training_steps=steps + 1)
    trainer.create_optimizer()  # a second call returns the same optimiser: its hooks must not scale twice
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for p in model.parameters():
            p.grad = torch.randn(p.shape, generator=generator)
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    return model.get_input_embeddings().weight.detach().clone()


@pytest.mark.parametrize("model_type", ["hbgl", "hpt"])
def test_label_rows_step_at_their_own_rate_and_the_rest_of_the_table_at_the_encoders(
        model_type: str, tiny_encoder_dir: Path, toy_taxonomy, tmp_path: Path) -> None:
    offset = CLASSES[model_type].from_encoder(str(tiny_encoder_dir), list(toy_taxonomy.labels), [
        list(p) for p in toy_taxonomy.parents]).config.label_token_offset
    start = table_after_steps(model_type, tiny_encoder_dir, toy_taxonomy, tmp_path, 1e-3, None, steps=0)
    split = table_after_steps(model_type, tiny_encoder_dir, toy_taxonomy, tmp_path, 1e-3, 3e-3)
    plain_encoder_rate = table_after_steps(model_type, tiny_encoder_dir, toy_taxonomy, tmp_path, 1e-3, None)
    plain_label_rate = table_after_steps(model_type, tiny_encoder_dir, toy_taxonomy, tmp_path, 3e-3, None)
    torch.testing.assert_close(split[:offset], plain_encoder_rate[:offset], rtol=0, atol=1e-7)
    torch.testing.assert_close(split[offset:], plain_label_rate[offset:], rtol=0, atol=1e-7)
    assert not torch.allclose(split[offset:], plain_encoder_rate[offset:], atol=1e-5)
    frozen = table_after_steps(model_type, tiny_encoder_dir, toy_taxonomy, tmp_path, 1e-3, 0.0)
    torch.testing.assert_close(frozen[offset:], start[offset:], rtol=0, atol=0)
    assert not torch.allclose(frozen[:offset], start[:offset])


def test_label_learning_rate_is_refused_without_label_rows(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_encoder_dir), num_labels=3)
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    with pytest.raises(ValueError, match="no label rows"):
        HierarchicalTrainer(model=model, args=args, label_learning_rate=1e-3).create_optimizer()


def cli_table(encoder_dir: Path, dataset_dir: Path, out: Path, *extra: str) -> tuple[torch.Tensor, int]:
    """HPT's word-embedding table after one CLI training step (no warm-up, fixed seed) and its label offset."""
    sys.path.insert(0, str(REPO / "examples"))
    from run_hierarchical_classification import main

    main(["--model_type", "hpt", "--model_name_or_path", str(encoder_dir), "--dataset_dir", str(dataset_dir),
          "--output_dir", str(out), "--do_train", "--max_steps", "1", "--warmup_steps", "0", "--max_seq_length", "16",
          "--seed", "3", "--report_to", "none", "--disable_tqdm", "true", "--use_cpu", "true", *extra])
    weights = load_file(str(out / "model.safetensors"))
    table = next(w for name, w in weights.items() if name.endswith("word_embeddings.weight"))
    return table, json.loads((out / "config.json").read_text())["label_token_offset"]


@pytest.mark.parametrize("optim", ["adamw_torch", "adamw_torch_fused", "sgd"])
def test_the_cli_trains_the_label_rows_at_label_learning_rate(optim: str, tiny_encoder_dir: Path,
                                                              toy_dataset_dir: Path, tmp_path: Path) -> None:
    """One Trainer step through the CLI (Accelerate's wrapped optimiser, the optimiser the Trainer builds for
    ``--optim``): with the same first gradients, the label rows land where a plain run at 2e-2 puts them, the rest
    of the table where a plain run at 1e-2 does."""
    run = [tiny_encoder_dir, toy_dataset_dir]
    split, offset = cli_table(*run, tmp_path / "split", "--optim", optim, "--learning_rate", "1e-2",
                              "--label_learning_rate", "2e-2")
    at_encoder_rate, _ = cli_table(*run, tmp_path / "slow", "--optim", optim, "--learning_rate", "1e-2")
    at_label_rate, _ = cli_table(*run, tmp_path / "fast", "--optim", optim, "--learning_rate", "2e-2")
    torch.testing.assert_close(split[:offset], at_encoder_rate[:offset], rtol=0, atol=1e-6)
    torch.testing.assert_close(split[offset:], at_label_rate[offset:], rtol=0, atol=1e-6)
    assert not torch.allclose(at_label_rate[offset:], at_encoder_rate[offset:], atol=1e-4)


def test_label_learning_rate_refuses_what_it_cannot_scale(tiny_encoder_dir: Path, toy_dataset_dir: Path,
                                                          tmp_path: Path) -> None:
    """A model without label rows is refused before anything loads; an optimiser whose step is not linear in the
    learning rate, and a negative rate, when the optimiser is built."""
    run = [tiny_encoder_dir, toy_dataset_dir]
    sys.path.insert(0, str(REPO / "examples"))
    from run_hierarchical_classification import main

    with pytest.raises(ValueError, match="--label_learning_rate is for hbgl and hpt"):
        main(["--model_type", "flat", "--model_name_or_path", str(tiny_encoder_dir), "--dataset_dir",
              str(toy_dataset_dir), "--output_dir", str(tmp_path / "flat"), "--label_learning_rate", "0"])
    with pytest.raises(ValueError, match="not Adafactor"):
        cli_table(*run, tmp_path / "adafactor", "--optim", "adafactor", "--label_learning_rate", "1e-3")
    with pytest.raises(ValueError, match=">= 0"):
        cli_table(*run, tmp_path / "negative", "--label_learning_rate=-1e-3")


def test_a_second_train_call_hooks_the_optimiser_once(tiny_encoder_dir: Path, toy_taxonomy, tokenizer,
                                                      tmp_path: Path) -> None:
    """After train(), the Trainer's optimiser is Accelerate's wrapper: create_optimizer() again must neither hook
    the inner optimiser twice nor fail on the wrapper, and a second train() runs."""
    from datasets import Dataset
    from transformers import DataCollatorWithPadding

    model = HPTForHierarchicalClassification.from_encoder(str(tiny_encoder_dir), list(toy_taxonomy.labels),
                                                          [list(p) for p in toy_taxonomy.parents])
    texts = tokenizer(["the ball game", "a gene in the cell"])
    labels = [[float(i == 0) for i in range(toy_taxonomy.num_labels)]] * 2
    train = Dataset.from_dict({**texts, "labels": labels})
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-3, max_steps=1, save_strategy="no",
                             report_to="none", use_cpu=True, disable_tqdm=True)
    trainer = HierarchicalTrainer(model=model, args=args, train_dataset=train, head_learning_rate=5e-3,
                                  label_learning_rate=2e-3, data_collator=DataCollatorWithPadding(tokenizer))
    trainer.train()
    inner = trainer.create_optimizer().optimizer
    assert len(inner._optimizer_step_pre_hooks) == len(inner._optimizer_step_post_hooks) == 1
    assert sorted(g["initial_lr"] for g in inner.param_groups) == [1e-3, 1e-3, 5e-3, 5e-3]
    trainer.train()


def test_the_recipes_label_rate_factor_applies_where_it_can_and_steps_aside_elsewhere(
        tiny_encoder_dir: Path, toy_taxonomy, tmp_path: Path, caplog, monkeypatch: pytest.MonkeyPatch) -> None:
    """``label_learning_rate_factor`` (the CLI's default) is ``label_learning_rate`` = factor x the rate where the
    label rows can have their own rate; with an untied decoder, a rate of 0 or DeepSpeed/FSDP it logs why and
    leaves the rows at the encoder's rate instead of refusing the run, and an explicit rate wins."""
    run = ("hbgl", tiny_encoder_dir, toy_taxonomy, tmp_path)
    by_factor = table_after_steps(*run, 1e-3, None, label_learning_rate_factor=3.0)
    torch.testing.assert_close(by_factor, table_after_steps(*run, 1e-3, 3e-3), rtol=0, atol=0)
    assert not torch.allclose(by_factor, table_after_steps(*run, 1e-3, None), atol=1e-5)
    explicit = table_after_steps(*run, 1e-3, 2e-3, label_learning_rate_factor=3.0)
    torch.testing.assert_close(explicit, table_after_steps(*run, 1e-3, 2e-3), rtol=0, atol=0)
    caplog.set_level(logging.INFO, logger="htc_tools.trainer")
    untied = table_after_steps(*run, 1e-3, None, label_learning_rate_factor=3.0, tie_word_embeddings=False)
    torch.testing.assert_close(untied, table_after_steps(*run, 1e-3, None, tie_word_embeddings=False), rtol=0, atol=0)
    assert "not the recipe's 3x: --label_learning_rate needs the MLM decoder tied" in caplog.text
    table_after_steps(*run, 0.0, None, label_learning_rate_factor=3.0)
    assert "not the recipe's 3x: the learning rate is 0" in caplog.text

    from transformers import Trainer

    create_accelerator = Trainer.create_accelerator_and_postprocess

    def as_if_fsdp(self) -> None:  # what `accelerate launch --use_fsdp` sets, without a process group
        create_accelerator(self)
        self.is_fsdp_enabled = True

    monkeypatch.setattr(Trainer, "create_accelerator_and_postprocess", as_if_fsdp)
    model = HBGLForHierarchicalClassification.from_encoder(str(tiny_encoder_dir), list(toy_taxonomy.labels),
                                                           [list(p) for p in toy_taxonomy.parents])
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    trainer = HierarchicalTrainer(model=model, args=args, label_learning_rate_factor=3.0)
    assert trainer.label_learning_rate_factor is None and "DeepSpeed or FSDP" in caplog.text
    with pytest.raises(ValueError, match="not supported with DeepSpeed or FSDP"):
        HierarchicalTrainer(model=model, args=args, label_learning_rate=3e-3)


def test_the_cli_gives_the_embedded_encoders_label_rows_the_recipes_rate(tiny_encoder_dir: Path, toy_dataset_dir: Path,
                                                                          tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --label_learning_rate, a run on the embedded encoder (played by the tiny one here: the CLI decides by
    its name) trains the label rows at 10x --learning_rate, and a run on another encoder at --learning_rate."""
    run = [tiny_encoder_dir, toy_dataset_dir]
    other_encoder, _ = cli_table(*run, tmp_path / "other", "--learning_rate", "1e-3")
    import htc_tools.cli.train as cli

    monkeypatch.setattr(cli, "EMBEDDED_ENCODER", str(tiny_encoder_dir))
    recipe, offset = cli_table(*run, tmp_path / "recipe", "--learning_rate", "1e-3")
    explicit, _ = cli_table(*run, tmp_path / "explicit", "--learning_rate", "1e-3", "--label_learning_rate", "1e-2")
    torch.testing.assert_close(recipe, explicit, rtol=0, atol=0)
    torch.testing.assert_close(recipe[:offset], other_encoder[:offset], rtol=0, atol=1e-6)
    assert not torch.allclose(recipe[offset:], other_encoder[offset:], atol=1e-4)
