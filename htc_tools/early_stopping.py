"""The HPT authors' early stopping: stop when neither macro- nor micro-F1 improved for ``patience`` evaluations.

The HPT paper (§5.1) stops when macro-F1 has not improved for 6 epochs, which is the Trainer's
``EarlyStoppingCallback(6)`` with ``metric_for_best_model="macro_f1"``. The authors' code resets its counter
when *either* macro- or micro-F1 improves (reference-notes P6, §2.8); this callback is that rule, for the paper
protocol (``--early_stopping_rule macro_or_micro``).
"""

from __future__ import annotations

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import ExportableState


class MacroMicroEarlyStopping(TrainerCallback, ExportableState):
    """Stops training after ``patience`` evaluations in a row in which neither ``eval_macro_f1`` nor
    ``eval_micro_f1`` beat its best value so far. Its counter and best values are saved with checkpoints (restored
    on resume with ``restore_callback_states_from_checkpoint``, as the Trainer's EarlyStoppingCallback)."""

    def __init__(self, patience: int = 6) -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.patience = patience
        self.best: dict[str, float] = {}
        self.evaluations_without_gain = 0

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    metrics: dict[str, float] | None = None, **kwargs: object) -> None:
        metrics = metrics or {}
        missing = [k for k in ("eval_macro_f1", "eval_micro_f1") if k not in metrics]
        if missing:
            raise KeyError(f"MacroMicroEarlyStopping needs {missing} from the evaluation (HierarchicalTrainer "
                           "with htc_tools.training.make_compute_metrics reports them)")
        improved = False
        for key in ("eval_macro_f1", "eval_micro_f1"):
            if key not in self.best or metrics[key] > self.best[key]:
                self.best[key] = metrics[key]
                improved = True
        self.evaluations_without_gain = 0 if improved else self.evaluations_without_gain + 1
        if self.evaluations_without_gain >= self.patience:
            control.should_training_stop = True

    def state(self) -> dict:
        return {"args": {"patience": self.patience},
                "attributes": {"best": self.best, "evaluations_without_gain": self.evaluations_without_gain}}
