"""Host-memory settings of CPU training (htc_tools/memory.py): oneDNN's kernel caches, bounded before they fill."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from htc_tools.memory import ONEDNN_CACHE_VARIABLES, bound_onednn_caches, onednn_caches_bounded

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_cache_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ONEDNN_CACHE_VARIABLES:
        monkeypatch.setenv(name, "1")  # recorded first, so that the test's own settings are undone afterwards
        monkeypatch.delenv(name)


def test_bounding_sets_both_caches_and_keeps_the_users_own_values(no_cache_settings: None,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert not onednn_caches_bounded()
    monkeypatch.setenv("LRU_CACHE_CAPACITY", "200")
    assert bound_onednn_caches() == {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "16", "LRU_CACHE_CAPACITY": "200"}
    assert onednn_caches_bounded()


@pytest.mark.parametrize("capacity", [0, -3, 2.5])
def test_a_cache_capacity_below_one_is_an_error(capacity: object, no_cache_settings: None) -> None:
    with pytest.raises(ValueError, match="integer >= 1"):  # ideep's cache crashes the process at 0
        bound_onednn_caches(capacity)  # type: ignore[arg-type]
    assert not onednn_caches_bounded()


def test_the_training_script_bounds_the_caches_before_the_first_forward_pass(
        no_cache_settings: None, tiny_encoder_dir: Path, toy_dataset_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The capacities are read at the process's first oneDNN kernel: the script sets them before any model runs
    (here: the first forward of HBGL's label pre-training, the stage whose shapes change every step)."""
    import functools
    import os

    from hbgl_hf import LabelGraphPretrainer

    sys.path.insert(0, str(REPO / "examples"))
    from run_hierarchical_classification import main as run

    seen: list[dict[str, str | None]] = []
    forward = LabelGraphPretrainer.forward

    @functools.wraps(forward)  # the Trainer keeps the dataset columns that the forward signature names
    def spy(self, *args, **kwargs):
        seen.append({name: os.environ.get(name) for name in ONEDNN_CACHE_VARIABLES})
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(LabelGraphPretrainer, "forward", spy)
    run(["--model_type", "hbgl", "--model_name_or_path", str(tiny_encoder_dir), "--dataset_dir", str(toy_dataset_dir),
         "--output_dir", str(tmp_path / "out"), "--do_train", "--max_steps", "1", "--per_device_train_batch_size",
         "4", "--max_seq_length", "32", "--label_pretraining_steps", "1", "--label_pretraining_batch_size", "2",
         "--save_strategy", "no", "--use_cpu", "--report_to", "none", "--disable_tqdm", "true"])
    assert seen and seen[0] == dict.fromkeys(ONEDNN_CACHE_VARIABLES, "16")
