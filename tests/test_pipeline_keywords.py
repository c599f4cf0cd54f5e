"""A pipeline call with a keyword the hierarchical pipeline does not take is an error (issue #16, item 10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hbgl_hf import HBGLForHierarchicalClassification
from htc_tools.hub import hierarchical_pipeline


@pytest.mark.parametrize("keywords", [{"top_k": 3}, {"truncation": False}, {"treshold": 0.9}])
def test_an_unknown_pipeline_keyword_is_an_error(tiny_encoder_dir: Path, toy_taxonomy, tokenizer,
                                                 keywords: dict) -> None:
    model = HBGLForHierarchicalClassification.from_encoder(str(tiny_encoder_dir), list(toy_taxonomy.labels),
                                                          [list(p) for p in toy_taxonomy.parents]).eval()
    pipe = hierarchical_pipeline(model, tokenizer)
    assert pipe(["the ball game"], threshold=0.9, hierarchy_consistent=True, max_length=8)  # known keywords work
    with pytest.raises(TypeError, match=rf"unknown keyword argument\(s\) {next(iter(keywords))}"):
        pipe(["the ball game"], **keywords)
