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


def test_quality_resume_refuses_kept_runs_of_other_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    """``quality.py --resume`` records each run's arguments (the CLI's default label-row rate written out) and
    refuses to put a run of other settings (here another epoch count or label-row rate) in one table with this
    invocation's; the same settings resume."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    quality = load_script("quality")
    trained: list[list[str]] = []

    def fake_run(argv: list[str]) -> dict[str, float]:
        trained.append(argv)
        return {f"test_{c}": 0.5 for c in quality.COLUMNS} | {"train_runtime": 60.0,
                                                               "train_label_pretraining_runtime": 30.0}

    sections: list[str] = []
    monkeypatch.setattr(quality, "run", fake_run)
    monkeypatch.setattr(quality, "REPO", tmp_path)
    monkeypatch.setattr(quality, "write_section", lambda name, body: sections.append(body))
    base = ["quality.py", "--datasets", str(tmp_path / "toy"), "--methods", "hbgl", "--epochs", "2", "--resume",
            "--recipe_args=--bf16"]

    def invoke(*extra: str) -> None:
        monkeypatch.setattr(sys, "argv", [*base, *extra])
        quality.main()

    invoke("--seeds", "1")
    kept = json.loads((tmp_path / "benchmarks" / "results" / "quality-toy.json").read_text())["toy/hbgl"][0]
    assert kept["settings"][kept["settings"].index("--num_train_epochs") + 1] == "2.0"
    assert "--seed" not in kept["settings"] and "--output_dir" not in kept["settings"]
    assert kept["settings"][-2:] == ["--label_learning_rate", "0.005"]  # the CLI's default on the embedded encoder
    invoke("--seeds", "1", "2")  # same settings: seed 1 is kept, seed 2 trained
    assert [a[a.index("--seed") + 1] for a in trained] == ["1", "2"]
    assert sections[-1].splitlines()[-1].endswith("| 1.5 |")  # "train min": HBGL's label pre-training included
    with pytest.raises(SystemExit, match="kept run toy/hbgl seed 1 was trained with"):
        invoke("--seeds", "3", "--epochs", "3")
    base[-1] = "--recipe_args=--bf16 --label_learning_rate 5e-3"
    with pytest.raises(SystemExit, match="--label_learning_rate 5e-3"):
        invoke("--seeds", "3")
    assert len(trained) == 2
    results_file = tmp_path / "benchmarks" / "results" / "quality-toy.json"
    legacy = json.loads(results_file.read_text())
    for run_record in legacy["toy/hbgl"]:
        del run_record["settings"]
    del legacy["toy/hbgl"][0]["train_label_pretraining_runtime"]  # seed 1 recorded before the stage's time was
    results_file.write_text(json.dumps(legacy))
    base[-1] = "--recipe_args=--bf16"
    invoke("--seeds", "1")  # runs kept before settings were recorded: named when the table is only rebuilt,
    assert "without recorded settings (not checked): toy/hbgl seed 1, toy/hbgl seed 2" in capsys.readouterr().out
    # a row with a run recorded before the stage's time was: every run's fine-tuning alone, and the row says so
    assert sections[-1].splitlines()[-1].endswith("| 1.0 (fine-tuning only) |")
    with pytest.raises(SystemExit, match="seed 1 has no recorded settings"):  # refused when new runs join them
        invoke("--seeds", "3")
    assert len(trained) == 2
