"""Learning rates per parameter group: the label rows of HBGL's and HPT's word-embedding table at
``label_learning_rate`` (htc_tools.learning_rates), checked against plain AdamW runs at that rate."""

from __future__ import annotations

import json
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
                      label_learning_rate: float | None, steps: int = 3) -> torch.Tensor:
    """The word-embedding table after ``steps`` AdamW steps (weight decay 0.1, linear schedule with warm-up) on the
    same fixed gradients for every parameter, from the same start."""
    torch.manual_seed(0)
    model = CLASSES[model_type].from_encoder(str(encoder_dir), list(taxonomy.labels),
                                             [list(p) for p in taxonomy.parents])
    args = TrainingArguments(output_dir=str(out), learning_rate=learning_rate, weight_decay=0.1, warmup_steps=1,
                             report_to="none", use_cpu=True)
    trainer = HierarchicalTrainer(model=model, args=args, label_learning_rate=label_learning_rate)
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


def test_the_cli_passes_label_learning_rate_to_training(tiny_encoder_dir: Path, toy_dataset_dir: Path,
                                                        tmp_path: Path) -> None:
    """--label_learning_rate 0 through the CLI: HPT's label rows come out of training as they went in, the rest of
    the table does not; a model without label rows is refused before anything loads."""
    sys.path.insert(0, str(REPO / "examples"))
    from run_hierarchical_classification import main

    def train(out: Path, *extra: str) -> torch.Tensor:
        main(["--model_type", "hpt", "--model_name_or_path", str(tiny_encoder_dir), "--dataset_dir",
              str(toy_dataset_dir), "--output_dir", str(out), "--do_train", "--max_steps", "2", "--warmup_steps", "0",
              "--max_seq_length", "16", "--learning_rate", "1e-2", "--seed", "3", "--report_to", "none",
              "--disable_tqdm", "true", "--use_cpu", "true", *extra])
        weights = load_file(str(out / "model.safetensors"))
        return next(w for name, w in weights.items() if name.endswith("word_embeddings.weight"))

    with pytest.raises(ValueError, match="--label_learning_rate is for hbgl and hpt"):
        main(["--model_type", "flat", "--model_name_or_path", str(tiny_encoder_dir), "--dataset_dir",
              str(toy_dataset_dir), "--output_dir", str(tmp_path / "flat"), "--label_learning_rate", "0"])
    frozen, moving = train(tmp_path / "frozen", "--label_learning_rate", "0"), train(tmp_path / "moving")
    untrained = train(tmp_path / "untrained", "--learning_rate", "0")
    offset = json.loads((tmp_path / "frozen" / "config.json").read_text())["label_token_offset"]
    torch.testing.assert_close(frozen[offset:], untrained[offset:], rtol=0, atol=0)
    assert not torch.allclose(moving[offset:], untrained[offset:])
    assert not torch.allclose(frozen[:offset], untrained[:offset])
