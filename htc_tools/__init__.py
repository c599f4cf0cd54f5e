"""Shared tooling for the HBGL and HPT models: taxonomies, data, metrics, preparation, training helpers.

Never shipped to the Hub: it imports the model packages, never the reverse.
"""

from .data import load_dataset_dir, prepare_split, prepare_splits, tokenize_dataset
from .data_sources import load_raw_splits
from .label_formats import LabelColumns, prepare_labelled_splits
from .metrics import hierarchical_metrics, load_evaluate_metric
from .taxonomy import AmbiguousLabelError, Taxonomy, TaxonomyError, load_taxonomy

__all__ = [
    "AmbiguousLabelError",
    "LabelColumns",
    "Taxonomy",
    "TaxonomyError",
    "hierarchical_metrics",
    "load_dataset_dir",
    "load_evaluate_metric",
    "load_raw_splits",
    "load_taxonomy",
    "prepare_labelled_splits",
    "prepare_split",
    "prepare_splits",
    "tokenize_dataset",
]
