"""Shared tooling for the HBGL and HPT models: taxonomies, data, metrics, preparation, training helpers.

Never shipped to the Hub: it imports the model packages, never the reverse.
"""

from .data import load_dataset_dir, prepare_split, prepare_splits, tokenize_dataset
from .metrics import hierarchical_metrics, load_evaluate_metric
from .taxonomy import Taxonomy, TaxonomyError, load_taxonomy

__all__ = [
    "Taxonomy",
    "TaxonomyError",
    "hierarchical_metrics",
    "load_dataset_dir",
    "load_evaluate_metric",
    "load_taxonomy",
    "prepare_split",
    "prepare_splits",
    "tokenize_dataset",
]
