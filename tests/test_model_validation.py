"""Inputs that used to give silent wrong results (issue #16): left padding, an edited config.json, labels other
than 0/1, empty batches, and training that must repeat bit for bit from the same seed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import TOY_TAXONOMY
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ reproducible training through the run script
@pytest.fixture
def two_threads() -> Iterator[None]:
    """The race in a parallel CPU kernel needs more than one thread (the machine may run tests with one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(2, before))
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.parametrize("model_type", ["hbgl", "hpt", "flat"])
def test_training_twice_from_one_seed_is_bit_exact(model_type: str, tiny_encoder_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch, two_threads: None) -> None:
    """The README main job (examples/demo.py) trains through ``run_hierarchical_classification.main`` in one
    process; dropout, HPT's MLM corruption and HBGL's target masking and label pre-training all stay on.
    Batches of 64 rows make HPT's prompt embeddings large enough for a multi-threaded CPU kernel."""
    monkeypatch.syspath_prepend(str(REPO / "examples"))
    from run_hierarchical_classification import main

    data = tmp_path / "data"
    data.mkdir()
    (data / "taxonomy.json").write_text(json.dumps(TOY_TAXONOMY))
    texts = ["the team won the ball game", "the molecule and the gene in the cell", "the band and the song",
             "energy of the atom in the lab", "a goal in the match", "the film about the actor"]
    leaves = ["ball", "biochem", "music", "chemistry", "ball", "arts"]
    rows = [{"text": f"{texts[i % 6]} {texts[(i * 5) % 6]}", "labels": [leaves[i % 6]]} for i in range(128)]
    for split in ("train", "dev"):
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    method = ["--label_pretraining_steps", "2"] if model_type == "hbgl" else []
    weights = []
    for run in ("first", "second"):
        main(["--model_type", model_type, "--model_name_or_path", str(tiny_encoder_dir), "--dataset_dir", str(data),
              "--output_dir", str(tmp_path / run), "--do_train", "--max_steps", "3", "--per_device_train_batch_size",
              "64", "--learning_rate", "1e-2", "--warmup_steps", "0.05", "--max_seq_length", "32", "--seed", "42",
              "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true", "--use_cpu", "true", *method])
        weights.append(load_file(tmp_path / run / "model.safetensors"))
    assert weights[0].keys() == weights[1].keys()
    differ = [k for k in weights[0] if not torch.equal(weights[0][k], weights[1][k])]
    assert not differ, differ
