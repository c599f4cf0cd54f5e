"""Host-memory settings of CPU training (htc_tools/memory.py): oneDNN's kernel caches, bounded before they fill."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from htc_tools.memory import ONEDNN_CACHE_VARIABLES, bound_onednn_caches, onednn_caches_bounded

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_cache_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*ONEDNN_CACHE_VARIABLES, "DNNL_PRIMITIVE_CACHE_CAPACITY"):
        monkeypatch.setenv(name, "1")  # recorded first, so that the test's own settings are undone afterwards
        monkeypatch.delenv(name)


def test_bounding_sets_both_caches_and_keeps_the_users_own_values(no_cache_settings: None,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert not onednn_caches_bounded()
    monkeypatch.setenv("LRU_CACHE_CAPACITY", "200")
    assert bound_onednn_caches() == {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "16", "LRU_CACHE_CAPACITY": "200"}
    assert onednn_caches_bounded() and os.environ["LRU_CACHE_CAPACITY"] == "200"


def test_the_legacy_dnnl_name_counts_as_the_users_setting(no_cache_settings: None,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """oneDNN reads ``ONEDNN_`` before ``DNNL_``: setting the former would override a user's ``DNNL_`` value."""
    monkeypatch.setenv("DNNL_PRIMITIVE_CACHE_CAPACITY", "64")
    assert bound_onednn_caches(8) == {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "64", "LRU_CACHE_CAPACITY": "8"}
    assert "ONEDNN_PRIMITIVE_CACHE_CAPACITY" not in os.environ


@pytest.mark.parametrize("capacity", [0, -3, 2.5, True])
def test_a_cache_capacity_below_one_is_an_error(capacity: object, no_cache_settings: None) -> None:
    with pytest.raises(ValueError, match="integer >= 1"):  # ideep's cache crashes the process at 0
        bound_onednn_caches(capacity)  # type: ignore[arg-type]
    assert not onednn_caches_bounded()


def test_the_training_script_bounds_the_caches_before_it_loads_anything(
        no_cache_settings: None, tiny_encoder_dir: Path, toy_dataset_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The capacities are read at the process's first oneDNN kernel: the script sets them before it loads data or a
    model (seen at its first loading step), and HBGL's label pre-training, the stage whose shapes change every step,
    runs with them."""
    from htc_tools.cli import train

    monkeypatch.syspath_prepend(str(REPO / "examples"))
    from run_hierarchical_classification import main as run

    seen: list[dict[str, str | None]] = []
    load_data = train.load_data

    def spy(*args, **kwargs):
        seen.append({name: os.environ.get(name) for name in ONEDNN_CACHE_VARIABLES})
        return load_data(*args, **kwargs)

    monkeypatch.setattr(train, "load_data", spy)
    run(["--model_type", "hbgl", "--model_name_or_path", str(tiny_encoder_dir), "--dataset_dir", str(toy_dataset_dir),
         "--output_dir", str(tmp_path / "out"), "--do_train", "--max_steps", "1", "--per_device_train_batch_size",
         "4", "--max_seq_length", "32", "--label_pretraining_steps", "1", "--label_pretraining_batch_size", "2",
         "--save_strategy", "no", "--use_cpu", "--report_to", "none", "--disable_tqdm", "true"])
    assert seen == [dict.fromkeys(ONEDNN_CACHE_VARIABLES, "16")]
