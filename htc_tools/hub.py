"""Saving and sharing: a model folder that carries its code, tokenizer, hierarchical pipeline and model card,
and ``push_to_hub`` of that folder in one commit."""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi
from transformers import AutoModel, Pipeline, pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .model_card import build_model_card

PIPELINE_TASK = "hierarchical-text-classification"


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
    """
    folder = Path(folder)
    if hasattr(model, "decode"):
        hierarchical_pipeline(model, tokenizer).save_pretrained(folder)
    else:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    build_model_card(model, **card).save(folder / "README.md")
    return folder


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
