"""Saving and sharing: a model folder that carries its code, tokenizer, hierarchical pipeline and model card,
and ``push_to_hub`` of that folder in one commit."""

from __future__ import annotations

import fnmatch
import importlib
import logging
import os
import shutil
import stat
import tempfile
import uuid
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi
from transformers import AutoModel, Pipeline, pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .model_card import build_model_card

logger = logging.getLogger(__name__)

PIPELINE_TASK = "hierarchical-text-classification"
# Files of a model folder: a re-save replaces them all, never leaving one of the old model next to the new one.
MODEL_FILE_PATTERNS = (
    "config.json", "generation_config.json", "README.md", "*.safetensors", "*.safetensors.index.json", "*.bin",
    "*.bin.index.json", "*.py", "tokenizer*", "special_tokens_map.json", "added_tokens.json", "vocab.*", "merges.txt",
    "*.model", "chat_template.*",
)


def hierarchical_pipeline(model, tokenizer, **kwargs: object) -> Pipeline:
    """The ``hierarchical-text-classification`` pipeline of an HBGL/HPT model (its package's copy), registered
    so that ``save_pretrained``/``push_to_hub`` write ``custom_pipelines`` and ship the pipeline code."""
    package = type(model).__module__.rsplit(".", 1)[0]
    pipeline_class = importlib.import_module(f"{package}.hierarchical_pipeline").HierarchicalTextClassificationPipeline
    PIPELINE_REGISTRY.register_pipeline(PIPELINE_TASK, pipeline_class=pipeline_class, pt_model=AutoModel, type="text")
    return pipeline(PIPELINE_TASK, model=model, tokenizer=tokenizer, **kwargs)


def save_model_folder(model, tokenizer, folder: str | Path, **card: object) -> Path:
    """Write model (safetensors) + code + tokenizer + pipeline + README model card to ``folder``.

    ``card`` goes to :func:`~htc_tools.model_card.build_model_card` (``base_model``, ``dataset_name``,
    ``results``, ...). Flat models (no ``decode``) are saved without the hierarchical pipeline.

    The save is atomic: everything is written to a hidden sibling folder that then replaces ``folder`` by a
    rename, so an interrupted save leaves the old folder as it was. Entries of the old folder that are not model
    files (:data:`MODEL_FILE_PATTERNS`), e.g. checkpoints or predictions, are carried over (hard links).
    """
    folder = Path(folder)
    folder = folder.resolve() if folder.is_symlink() else folder
    cwd = Path.cwd().resolve()
    if folder.exists() and (cwd == folder.resolve() or folder.resolve() in cwd.parents):
        raise ValueError(f"save_model_folder: {folder} holds the working directory; save into a folder of its own")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging, beside = _staging_folder(folder)
    complete = False
    try:
        os.chmod(staging, stat.S_IMODE(folder.stat().st_mode) if folder.is_dir() else 0o777 & ~_umask())
        if hasattr(model, "decode"):
            hierarchical_pipeline(model, tokenizer).save_pretrained(staging)
        else:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
        build_model_card(model, **card).save(staging / "README.md")
        complete = True
        if beside and not os.path.ismount(folder):
            if folder.is_dir():
                _carry_over(folder, staging)
            try:
                _replace(staging, folder)
                return folder
            except OSError as error:  # e.g. a busy folder or one on another device: replace file by file
                logger.warning(f"save_model_folder: cannot rename over {folder} ({error}); replacing its files")
        _replace_files(staging, folder)
    except BaseException:
        if complete and staging.exists():  # never delete a finished model: say where it is
            logger.error(f"save_model_folder: the complete new model is kept in {staging}")
        else:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def _staging_folder(folder: Path) -> tuple[Path, bool]:
    """A fresh hidden folder beside ``folder`` (True), or inside it where its parent is not writable (False)."""
    try:
        return Path(tempfile.mkdtemp(prefix=f".{folder.name}.saving-", dir=folder.parent)), True
    except OSError:
        folder.mkdir(exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".saving-", dir=folder)), False


def _replace_files(staging: Path, folder: Path) -> None:
    """Fallback of the folder rename (a mount point, another device, a non-writable parent): the old model files
    of ``folder`` that the new model does not write are removed, then each new file replaces its namesake."""
    folder.mkdir(exist_ok=True)
    new_names = {entry.name for entry in staging.iterdir()}
    for entry in folder.iterdir():
        model_file = entry.is_file() and any(fnmatch.fnmatch(entry.name, p) for p in MODEL_FILE_PATTERNS)
        if model_file and entry.name not in new_names:
            entry.unlink()
    for entry in staging.iterdir():
        target = folder / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        shutil.move(str(entry), str(target))  # os.replace on one device, a copy across devices
    shutil.rmtree(staging)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _carry_over(old: Path, new: Path) -> None:
    """Hard-link (or copy) the entries of ``old`` that are neither written to ``new`` nor model files."""
    for entry in old.iterdir():
        target = new / entry.name
        if target.exists() or (entry.is_file() and any(fnmatch.fnmatch(entry.name, p) for p in MODEL_FILE_PATTERNS)):
            continue
        if entry.is_symlink():
            os.symlink(os.readlink(entry), target)
        elif entry.is_dir():
            shutil.copytree(entry, target, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, target)


def _link_or_copy(source: str | Path, target: str | Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _replace(staging: Path, folder: Path) -> None:
    """Rename ``staging`` to ``folder``; an existing ``folder`` is moved aside first and deleted after."""
    if not folder.exists():
        os.rename(staging, folder)
        return
    old = folder.with_name(f".{folder.name}.replaced-{uuid.uuid4().hex[:8]}")
    os.rename(folder, old)
    try:
        os.rename(staging, folder)
    except BaseException:
        os.rename(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)


def push_model_folder(model, tokenizer, repo_id: str, token: str | None = None, private: bool | None = None,
                      commit_message: str = "Upload hierarchical text classifier", **card: object) -> str:
    """Push everything :func:`save_model_folder` writes to the Hub in one commit (transformers' own
    ``push_to_hub`` would replace our model card with its template). Returns the commit URL."""
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_model_folder(model, tokenizer, tmp, **card)
        operations = [CommitOperationAdd(path_in_repo=path.relative_to(folder).as_posix(), path_or_fileobj=str(path))
                      for path in sorted(folder.rglob("*")) if path.is_file()]
        info = api.create_commit(repo_id, operations=operations, commit_message=commit_message)
    return str(info.commit_url)
