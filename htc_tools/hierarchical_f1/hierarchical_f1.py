"""`evaluate` module: HiAGM micro/macro-F1, hierarchical P/R/F1, per-level F1, inconsistency rate.

Load offline with ``htc_tools.metrics.load_evaluate_metric()`` (or ``evaluate.load(<this folder>)``).
"""

import datasets
import evaluate
import numpy as np

from htc_tools.metrics import hierarchical_metrics
from htc_tools.taxonomy import Taxonomy

_DESCRIPTION = """HiAGM-exact micro/macro-F1 (macro over ALL labels; absent labels score 0), hierarchical
precision/recall/F1 over ancestor-augmented sets, per-level micro/macro-F1 and the inconsistency rate."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: multi-hot lists [num_labels] per sample, taxonomy id order.
    references: multi-hot lists [num_labels] per sample.
    label_parents: per label id, the list of its parent ids (empty for top-level labels).
Returns: a flat dict of float scores.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class HierarchicalF1(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int8")),
                    "references": datasets.Sequence(datasets.Value("int8")),
                }
            ),
        )

    def _compute(self, predictions, references, label_parents=None):
        if label_parents is None:
            raise ValueError("pass label_parents=[[parent ids] per label] to compute()")
        labels = [str(i) for i in range(len(label_parents))]
        taxonomy = Taxonomy.from_parents(labels, label_parents)
        # from_parents re-orders ids level-major; map columns back to the caller's order.
        order = [taxonomy.id(name) for name in labels]
        inverse = np.argsort(order)
        return hierarchical_metrics(np.asarray(references)[:, inverse], np.asarray(predictions)[:, inverse], taxonomy)
