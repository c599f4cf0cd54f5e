#!/usr/bin/env python
"""Thin wrapper around the installed ``htc-train`` CLI (:mod:`htc_tools.cli.train`), kept so that
``python examples/run_hierarchical_classification.py ...``, ``accelerate launch`` / ``torchrun`` on this file and
``from run_hierarchical_classification import main`` keep working. See ``htc-train --help``."""

from htc_tools.cli.train import (  # noqa: F401  (re-exported for scripts and tests that import them from here)
    DEFAULT_DATA,
    MODEL_CLASSES,
    DataArguments,
    ModelArguments,
    build_model,
    early_stopping_callbacks,
    entry_point,
    main,
    parse_arguments,
    resolve_label_pretraining_steps,
    write_predictions,
)

if __name__ == "__main__":
    entry_point()
