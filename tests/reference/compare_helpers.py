"""Shared by the two package-vs-reference test files: the taxonomies they run on and a one-thread fixture."""

from __future__ import annotations

import pytest
import torch
from conftest import TOY_TAXONOMY, shared_taxonomy
from test_hbgl import DEPTH4

from htc_tools.taxonomy import Taxonomy, load_taxonomy

TOY = Taxonomy.from_dict(TOY_TAXONOMY)  # a DAG ("biochem" under "chemistry" and "biology") with sibling leaves


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run on one intra-op thread: on a busy 2-core machine two spinning threads are ~100x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def taxonomy(name: str) -> Taxonomy:
    """DEPTH4 / the toy DAG, or a real taxonomy of ../shared/taxonomies/raw (the test is skipped without it)."""
    if name == "depth4":
        return DEPTH4
    if name == "toy":
        return TOY
    return load_taxonomy(shared_taxonomy(f"raw/{name}.taxonomy"))


def parents_of(tax: Taxonomy) -> list[list[int]]:
    return [list(p) for p in tax.parents]
