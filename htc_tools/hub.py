"""Saving and sharing: a model folder that carries its code, tokenizer, hierarchical pipeline and model card,
and its upload to the Hub (``HfApi.upload_folder``).

Works on models of the installed packages and on models loaded with ``AutoModel.from_pretrained(...,
trust_remote_code=True)`` (their code lives in ``transformers_modules``; ``hbgl_hf``/``hpt_hf`` need not be
imported).
"""

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

from huggingface_hub import HfApi
from transformers import AutoModel, Pipeline, pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .model_card import build_model_card, inherited_card_data

logger = logging.getLogger(__name__)

PIPELINE_TASK = "hierarchical-text-classification"
PIPELINE_CLASS = "HierarchicalTextClassificationPipeline"
# Files of a model folder: a re-save replaces them all, never leaving one of the old model next to the new one.
MODEL_FILE_PATTERNS = (
    "config.json", "generation_config.json", "README.md", "*.safetensors", "*.safetensors.index.json", "*.bin",
    "*.bin.index.json", "*.py", "tokenizer*", "special_tokens_map.json", "added_tokens.json", "vocab.*", "merges.txt",
    "*.model", "chat_template.*",
)


def pipeline_class(model) -> type[Pipeline]:
    """The model's own copy of the pipeline class: the module that defines ``type(model)`` imports its sibling
    ``hierarchical_pipeline`` (a model loaded with ``trust_remote_code`` brings it in ``transformers_modules``);
    models saved before that import existed fall back to the installed package of their ``model_type``."""
    registration = getattr(importlib.import_module(type(model).__module__), "pipeline_registration", None)
    module = registration.__module__ if registration else f"{model.config.model_type}_hf.hierarchical_pipeline"
    return getattr(importlib.import_module(module), PIPELINE_CLASS)


def hierarchical_pipeline(model, tokenizer, **kwargs: object) -> Pipeline:
    """The ``hierarchical-text-classification`` pipeline of an HBGL/HPT model (its own copy of the class),
    registered so that ``save_pretrained``/``push_to_hub`` write ``custom_pipelines`` and ship the pipeline code."""
    cls = pipeline_class(model)
    PIPELINE_REGISTRY.register_pipeline(PIPELINE_TASK, pipeline_class=cls, pt_model=AutoModel, type="text")
    # pipeline_class given: the model's config.custom_pipelines would otherwise ask for trust_remote_code
    return pipeline(PIPELINE_TASK, model=model, tokenizer=tokenizer, pipeline_class=cls, **kwargs)


def save_model_folder(model, tokenizer, folder: str | Path, **card: object) -> Path:
    """Write model (safetensors) + code + tokenizer + pipeline + README model card to ``folder``.

    ``card`` goes to :func:`~htc_tools.model_card.build_model_card` (``base_model``, ``dataset_name``,
    ``results``, ``license``, ``widget_texts``, ``repo_id``; the usage snippet names ``repo_id``, else the folder's
    name). What is not given is taken from the card of the folder or Hub repo the model was loaded from, when that
    card is one of ours (:func:`~htc_tools.model_card.inherited_card_data`), so re-saving or pushing a loaded model
    keeps its ``base_model``, results and widget. Flat models (no ``decode``) are saved without the pipeline.

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
        card = {"repo_id": folder.name, **{k: v for k, v in card.items() if v is not None}}
        card.setdefault("inherited", inherited_card_data(model))
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
                      commit_message: str = "Upload hierarchical text classifier", revision: str | None = None,
                      **card: object) -> str:
    """Upload everything :func:`save_model_folder` writes (``card`` included, its snippet naming ``repo_id``) with
    ``HfApi.upload_folder``; transformers' own ``push_to_hub`` would replace our model card with its template.
    Returns the commit URL."""
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id  # "name" -> "user/name"
    with tempfile.TemporaryDirectory() as tmp:
        card.setdefault("inherited", inherited_card_data(model, download=True, token=token))  # Hub-loaded: its card
        folder = save_model_folder(model, tokenizer, Path(tmp) / repo_id.split("/")[-1], repo_id=repo_id, **card)
        info = api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message,
                                 revision=revision)
    return str(info.commit_url)
