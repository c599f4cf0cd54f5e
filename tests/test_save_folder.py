"""save_model_folder is atomic: a folder holds the old model or the new one, never a mix (issue #16, item 2)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from hbgl_hf import HBGLForHierarchicalClassification
from htc_tools import hub
from htc_tools.hub import save_model_folder


def _model(encoder: Path, taxonomy, seed: int) -> HBGLForHierarchicalClassification:
    torch.manual_seed(seed)
    model = HBGLForHierarchicalClassification.from_encoder(str(encoder), list(taxonomy.labels),
                                                          [list(p) for p in taxonomy.parents])
    with torch.no_grad():
        model.cls.bias.normal_()  # the two models differ in their saved weights
    return model


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_interrupted_save_leaves_the_old_folder_untouched(tiny_encoder_dir: Path, toy_taxonomy, tokenizer,
                                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "model"
    save_model_folder(_model(tiny_encoder_dir, toy_taxonomy, 0), tokenizer, folder, results={"test_macro_f1": 0.1})
    before = _snapshot(folder)

    def interrupted(*args: object, **kwargs: object) -> None:  # the weights, code and tokenizer are written by now
        raise KeyboardInterrupt

    monkeypatch.setattr(hub, "build_model_card", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_model_folder(_model(tiny_encoder_dir, toy_taxonomy, 1), tokenizer, folder,
                          results={"test_macro_f1": 0.9})
    assert _snapshot(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "tiny-encoder"]  # no staging folder left


def test_a_resave_replaces_every_model_file_and_keeps_other_entries(tiny_encoder_dir: Path, toy_taxonomy, tokenizer,
                                                                    tmp_path: Path) -> None:
    folder = tmp_path / "model"
    save_model_folder(_model(tiny_encoder_dir, toy_taxonomy, 0), tokenizer, folder)
    (folder / "model-00001-of-00002.safetensors").write_bytes(b"stale shard")  # of an older, sharded save
    (folder / "checkpoint-2").mkdir()
    (folder / "checkpoint-2" / "optimizer.pt").write_bytes(b"state")
    (folder / "test_predictions.jsonl").write_text("{}\n")
    os.chmod(folder, 0o750)
    new = _model(tiny_encoder_dir, toy_taxonomy, 1)
    save_model_folder(new, tokenizer, folder, results={"test_macro_f1": 0.9})
    files = _snapshot(folder)
    assert "model-00001-of-00002.safetensors" not in files
    assert files["checkpoint-2/optimizer.pt"] == b"state" and files["test_predictions.jsonl"] == b"{}\n"
    assert b"| test_macro_f1 | 0.9000 |" in files["README.md"]
    again = HBGLForHierarchicalClassification.from_pretrained(folder)
    assert torch.equal(again.cls.bias, new.cls.bias)
    assert (folder.stat().st_mode & 0o777) == 0o750
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "tiny-encoder"]


def test_a_new_folder_gets_the_usual_permissions(tiny_encoder_dir: Path, toy_taxonomy, tokenizer,
                                                 tmp_path: Path) -> None:
    mask = os.umask(0o022)
    try:
        folder = save_model_folder(_model(tiny_encoder_dir, toy_taxonomy, 0), tokenizer, tmp_path / "a" / "model")
    finally:
        os.umask(mask)
    assert (folder.stat().st_mode & 0o777) == 0o755


def test_the_working_directory_is_never_replaced(tiny_encoder_dir: Path, toy_taxonomy, tokenizer, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "work" / "src").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work" / "src")
    with pytest.raises(ValueError, match="holds the working directory"):
        save_model_folder(_model(tiny_encoder_dir, toy_taxonomy, 0), tokenizer, tmp_path / "work")
    assert (tmp_path / "work" / "src").is_dir()


@pytest.mark.parametrize("obstacle", ["rename", "parent"])
def test_a_folder_that_cannot_be_renamed_over_still_gets_the_new_model(obstacle: str, tiny_encoder_dir: Path,
                                                                        toy_taxonomy, tokenizer, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A mount point or a busy folder (rename fails), or a parent that is not writable (no sibling staging): the
    new model replaces the old files one by one; nothing of the trained model is lost."""
    folder = tmp_path / "model"
    save_model_folder(_model(tiny_encoder_dir, toy_taxonomy, 0), tokenizer, folder)
    (folder / "model-00001-of-00002.safetensors").write_bytes(b"stale shard")
    (folder / "test_predictions.jsonl").write_text("{}\n")
    if obstacle == "rename":
        real_rename = os.rename

        def busy(source: object, target: object) -> None:
            if Path(source) == folder or Path(target) == folder:
                raise OSError(16, "Device or resource busy")
            real_rename(source, target)

        monkeypatch.setattr(hub.os, "rename", busy)
    else:
        real_mkdtemp = hub.tempfile.mkdtemp

        def read_only_parent(prefix: str = "", dir: object = None) -> str:
            if Path(dir) == folder.parent:
                raise PermissionError(13, "Permission denied")
            return real_mkdtemp(prefix=prefix, dir=dir)

        monkeypatch.setattr(hub.tempfile, "mkdtemp", read_only_parent)
    new = _model(tiny_encoder_dir, toy_taxonomy, 1)
    save_model_folder(new, tokenizer, folder, results={"test_macro_f1": 0.9})
    files = _snapshot(folder)
    assert "model-00001-of-00002.safetensors" not in files and files["test_predictions.jsonl"] == b"{}\n"
    assert b"| test_macro_f1 | 0.9000 |" in files["README.md"]
    again = HBGLForHierarchicalClassification.from_pretrained(folder)
    assert torch.equal(again.cls.bias, new.cls.bias)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "tiny-encoder"]  # no staging folder left
