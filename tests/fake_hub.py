"""A local stand-in for the Hub behind ``HfApi``: repos are folders under ``root``, commits copy their files there.

``install(root)`` patches ``HfApi.create_repo``, ``HfApi.create_commit`` and the server-side README check
``HfApi._validate_yaml`` (here: the card's YAML must parse), and sends ``upload_folder`` down its single-commit
path (no Xet pipeline), so the real ``upload_folder`` (file selection, operations) runs offline. Importable by
test subprocesses (no pytest, no package imports).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any


class FakeHub:
    def __init__(self, root: Path) -> None:
        self.root, self.commits, self.validated = Path(root), [], 0

    def create_repo(self, repo_id: str, **kwargs: object) -> SimpleNamespace:
        (self.root / repo_id).mkdir(parents=True, exist_ok=True)
        return SimpleNamespace(repo_id=repo_id, url=f"https://hub.invalid/{repo_id}")

    def create_commit(self, repo_id: str, operations: list, **kwargs: object) -> SimpleNamespace:
        self.commits.append([op.path_in_repo for op in operations])
        for op in operations:
            target = self.root / repo_id / op.path_in_repo
            target.parent.mkdir(parents=True, exist_ok=True)
            source = op.path_or_fileobj
            target.write_bytes(Path(source).read_bytes() if isinstance(source, (str, Path)) else source.read())
        n = len(self.commits)
        return SimpleNamespace(commit_url=f"https://hub.invalid/{repo_id}/commit/{n}", oid=str(n))

    def validate_yaml(self, content: str, **kwargs: object) -> None:
        from huggingface_hub import ModelCard

        ModelCard(content, ignore_metadata_errors=False)  # raises on YAML the Hub would reject as unparsable
        self.validated += 1


def install(root: Path, patch: Callable[[Any, str, Any], None] = setattr) -> FakeHub:
    """Route ``HfApi`` to a :class:`FakeHub` in ``root``; ``patch``: ``setattr`` or ``monkeypatch.setattr``."""
    import huggingface_hub.hf_api
    from huggingface_hub import HfApi

    hub = FakeHub(root)
    patch(huggingface_hub.hf_api, "is_xet_available", lambda: False)
    patch(HfApi, "create_repo", lambda self, repo_id, **kw: hub.create_repo(repo_id, **kw))
    patch(HfApi, "create_commit", lambda self, repo_id, operations, **kw: hub.create_commit(repo_id, operations, **kw))
    patch(HfApi, "_validate_yaml", lambda self, content, **kw: hub.validate_yaml(content, **kw))
    return hub
