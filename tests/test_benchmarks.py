"""The paper-protocol commands run end to end (tiny encoder and data, a 2-step budget)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("method", "dataset"), [("hbgl", "rcv1"), ("hbgl", "wos"), ("hpt", "nyt")])
def test_paper_protocol_commands_run_on_tiny_data(method: str, dataset: str, tiny_encoder_dir: Path,
                                                  toy_dataset_dir: Path, tmp_path: Path) -> None:
    protocol = load_script("paper_protocol")
    shutil.copytree(toy_dataset_dir, tmp_path / "data" / dataset, ignore=shutil.ignore_patterns("data"))
    argv = protocol.command_args(method, dataset, str(tmp_path / "data"), str(tmp_path / "runs"), seed=1,
                                 encoder=str(tiny_encoder_dir))
    assert "bert-base-uncased" in protocol.command_args(method, dataset, "d", "r", 1)
    smoke = ["--max_steps", "2", "--eval_steps", "1", "--save_steps", "1", "--max_seq_length", "32",
             "--label_pretraining_steps", "2", "--label_pretraining_batch_size", "2", "--report_to", "none",
             "--disable_tqdm", "true", "--use_cpu"]
    sys.path.insert(0, str(REPO / "examples"))
    from run_hierarchical_classification import main as run

    results = run(argv + smoke)
    assert {"eval_macro_f1", "test_macro_f1", "test_micro_f1"} <= set(results)
    out = tmp_path / "runs" / f"{method}_{dataset}_seed1"
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == method
    if method == "hbgl" and dataset != "rcv1":
        assert config["cpt_mask_ratio_max"] == 0.15  # the authors' constant ratio for WOS/NYT


def test_label_pretraining_benchmark_cuts_an_ancestor_closed_taxonomy(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--num_labels N`` keeps the first N labels in level order: every kept label keeps its parents (by name)."""
    from conftest import shared_taxonomy

    from htc_tools.taxonomy import load_taxonomy

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))  # the script imports its sibling ``common``
    script = load_script("label_pretraining")
    full = load_taxonomy(shared_taxonomy("raw/nyt.taxonomy"))
    cut = script.level_order_cut(full, 60)
    assert cut.num_labels == 60 and script.level_order_cut(full, None) is full
    assert list(cut.levels) == sorted(cut.levels) and max(cut.levels) > 1
    for i, parents in enumerate(cut.parents):
        original = full.id(cut.labels[i])
        assert sorted(cut.labels[p] for p in parents) == sorted(full.labels[p] for p in full.parents[original])
