"""The HPT authors' early-stopping rule (reference P6) against the paper's (the Trainer's callback on macro-F1)."""

from __future__ import annotations

import pytest
from transformers import EarlyStoppingCallback, TrainerControl, TrainerState, TrainingArguments

from htc_tools.early_stopping import MacroMicroEarlyStopping

# macro-F1 stalls from the 2nd evaluation on; micro-F1 keeps improving until the 4th, then stalls too
HISTORY = [(0.30, 0.50), (0.31, 0.52), (0.31, 0.55), (0.30, 0.56), (0.31, 0.58), (0.31, 0.56), (0.30, 0.57),
           (0.29, 0.55)]


def stopping_evaluation(callback, args: TrainingArguments) -> int | None:
    """1-based index of the evaluation after which ``callback`` stops training (None: never)."""
    state, control = TrainerState(), TrainerControl()
    for i, (macro, micro) in enumerate(HISTORY, start=1):
        metrics = {"eval_macro_f1": macro, "eval_micro_f1": micro}
        callback.on_evaluate(args, state, control, metrics=metrics)
        state.best_metric = max(state.best_metric or 0.0, macro)  # the Trainer tracks it after on_evaluate
        if control.should_training_stop:
            return i
    return None


def test_authors_rule_resets_on_either_metric_and_paper_rule_on_macro_only(tmp_path) -> None:
    args = TrainingArguments(str(tmp_path), metric_for_best_model="macro_f1", load_best_model_at_end=True,
                             eval_strategy="epoch", save_strategy="epoch", report_to="none")
    assert stopping_evaluation(MacroMicroEarlyStopping(patience=2), args) == 7  # micro best at 5: 6, 7 stall
    paper = EarlyStoppingCallback(early_stopping_patience=2)
    paper.on_train_begin(args, TrainerState(), TrainerControl())
    assert stopping_evaluation(paper, args) == 4  # macro best at 2: 3, 4 stall


def test_authors_rule_needs_both_metrics() -> None:
    with pytest.raises(KeyError, match="eval_micro_f1"):
        MacroMicroEarlyStopping(2).on_evaluate(None, TrainerState(), TrainerControl(), metrics={"eval_macro_f1": 1})


def test_authors_rule_state_round_trips_for_resume(tmp_path) -> None:
    args = TrainingArguments(str(tmp_path), report_to="none")
    callback = MacroMicroEarlyStopping(patience=3)
    for macro, micro in HISTORY[:4]:
        callback.on_evaluate(args, TrainerState(), TrainerControl(),
                             metrics={"eval_macro_f1": macro, "eval_micro_f1": micro})
    restored = MacroMicroEarlyStopping.from_state(callback.state())
    assert (restored.patience, restored.best, restored.evaluations_without_gain) == (
        3, callback.best, callback.evaluations_without_gain)
