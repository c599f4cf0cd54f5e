"""HierarchicalTrainer: the Trainer for HBGL, HPT and the flat baseline.

- evaluation and ``predict()`` go through the model's ``decode()`` (HBGL: level by level with a KV cache; HPT:
  one pass), so the reported metrics are those of real inference, not of teacher-forced logits;
  predictions come back as ``(selected [N, L] 0/1, probabilities [N, L])``;
- the best checkpoint is chosen by macro-F1 (HPT §5.1) unless ``metric_for_best_model`` says otherwise;
- ``train()`` runs HBGL's two stages in one call: label-embedding pre-training (Alg. 1, encoder frozen, its
  own short Trainer run, DDP-safe) then fine-tuning.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import time
from typing import Any

import datasets
import numpy as np
import torch
from torch import nn
from transformers import Trainer, TrainingArguments

from .learning_rates import label_row_obstacle, scale_label_row_updates, split_head_learning_rate
from .memory import ONEDNN_CACHE_SETTING, ReleaseFreedMemoryCallback, onednn_caches_bounded

logger = logging.getLogger(__name__)


def run_label_pretraining(model: nn.Module, args: TrainingArguments, num_steps: int, learning_rate: float = 1e-3,
                          batch_size: int = 32) -> list[float]:
    """HBGL's global stage under the Trainer (and DDP/Accelerate): trains the label rows only, then writes them
    back into ``model`` and unfreezes it. Returns the logged losses.

    The encoder is frozen *before* the stage's Trainer wraps anything (hf-notes §4.2), the only trainable
    parameter takes part in every step (``ddp_find_unused_parameters=False``), and rows are served in order so
    each step's masking ratio grows from ``cpt_mask_ratio_min`` to ``cpt_mask_ratio_max`` (Alg. 1). Each row has
    its own masking seed derived from ``args.seed``: every rank masks other labels, and a single process
    reproduces ``model.pretrain_label_embeddings(num_steps, learning_rate, batch_size, seed=args.seed)``.
    """
    from hbgl_hf import LabelGraphPretrainer
    from hbgl_hf.label_pretraining import stage_rows

    # the authors' stage (and pretrain_label_embeddings): AdamW, no weight decay, eps 1e-8, constant learning rate,
    # no gradient clipping; none of the fine-tuning's optimiser, evaluation or batch-size settings leak in
    stage_args = dataclasses.replace(
        args, output_dir=os.path.join(args.output_dir, "label_pretraining"), max_steps=num_steps,
        num_train_epochs=1, learning_rate=learning_rate, per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=1, optim="adamw_torch", optim_args=None, weight_decay=0.0, adam_beta1=0.9,
        adam_beta2=0.999, adam_epsilon=1e-8, max_grad_norm=0.0, warmup_steps=0, lr_scheduler_type="constant",
        lr_scheduler_kwargs={}, train_sampling_strategy="sequential", eval_strategy="no", save_strategy="no",
        load_best_model_at_end=False, ddp_find_unused_parameters=False, logging_strategy="steps",
        logging_steps=max(1, num_steps // 10), report_to="none", activation_checkpointing=False, push_to_hub=False,
        torch_compile=False, eval_on_start=False, neftune_noise_alpha=None, auto_find_batch_size=False,
    )
    # one step takes the rows of every process (and of every GPU under DataParallel)
    per_step = stage_args.train_batch_size * max(stage_args.world_size, 1)
    rows = datasets.Dataset.from_dict(stage_rows(num_steps, per_step, args.seed))
    # the stage draws from the global RNGs (dropout, the Trainer's seeding): restore them afterwards, as the
    # authors' code and pretrain_label_embeddings do, so that fine-tuning does not depend on the stage
    python_state, numpy_state = random.getstate(), np.random.get_state()
    # every step has other shapes: with oneDNN's kernel caches unbounded they keep the process growing (GBs in 100
    # steps); the fallback hands the freed pages back after every step (bounded, a third slower)
    trim_every_step = stage_args.device.type == "cpu" and not onednn_caches_bounded()
    if trim_every_step:
        logger.warning("label pre-training on CPU with oneDNN's kernel caches unbounded: handing freed memory back "
                       "after every step instead (slower). Set %s before the process starts (the training script "
                       "does); see htc_tools/memory.py", ONEDNN_CACHE_SETTING)
    with torch.random.fork_rng(devices=range(torch.cuda.device_count()) if torch.cuda.is_available() else []):
        stage = LabelGraphPretrainer(model)
        # the stage's working memory goes back to the OS before fine-tuning
        trainer = Trainer(model=stage, args=stage_args, train_dataset=rows,
                          callbacks=[ReleaseFreedMemoryCallback(every_step=trim_every_step)])
        trainer.train()
        stage.commit()
    random.setstate(python_state)
    np.random.set_state(numpy_state)
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


class HierarchicalTrainer(Trainer):
    """A :class:`~transformers.Trainer` that evaluates hierarchical models by their ``decode()``.

    Args (beyond the Trainer's):
        decode_threshold: selection threshold on probabilities (None: the model config's; flat models: 0.5).
        hierarchy_consistent: decode a label only below a selected parent (None: the model config's).
        label_pretraining_steps: HBGL's global stage before fine-tuning (0 or None skips it; other models ignore it).
        label_pretraining_learning_rate, label_pretraining_batch_size: its budget (paper: lr 1e-3 or 1e-4).
        head_learning_rate: learning rate of the parameters outside the encoder (``base_model_prefix``): HBGL's and
            HPT's MLM transform and biases, HPT's graph layers, the flat classifier (None: ``learning_rate`` for all).
        label_learning_rate: learning rate of HBGL's and HPT's label rows in the word-embedding table (None: the
            encoder's); see :func:`~htc_tools.learning_rates.scale_label_row_updates`.
        label_learning_rate_factor: a default for ``label_learning_rate`` of factor x ``learning_rate`` (the CLI's
            recipe), applied where the label rows can have their own rate and else logged and skipped (DeepSpeed,
            FSDP, another optimiser, an untied decoder, no label rows, a rate of 0); ignored with
            ``label_learning_rate``.
    """

    _label_pretraining_on_init = False  # set by train() while the Trainer re-creates the model with model_init

    def __init__(self, *args: Any, decode_threshold: float | None = None, hierarchy_consistent: bool | None = None,
                 label_pretraining_steps: int | None = 0, label_pretraining_learning_rate: float = 1e-3,
                 label_pretraining_batch_size: int = 32, head_learning_rate: float | None = None,
                 label_learning_rate: float | None = None, label_learning_rate_factor: float | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_learning_rate = head_learning_rate
        self.label_learning_rate = label_learning_rate
        self.label_learning_rate_factor = label_learning_rate_factor  # create_optimizer: an explicit rate wins
        # here, not in create_optimizer: DeepSpeed may build its optimiser from its config without calling it
        if self.is_deepspeed_enabled or self.is_fsdp_enabled or self.is_fsdp_xla_enabled:
            if label_learning_rate is not None:
                raise ValueError("--label_learning_rate is not supported with DeepSpeed or FSDP (their optimiser "
                                 "steps other copies of the weights)")
            self._skip_label_learning_rate_factor("DeepSpeed or FSDP steps other copies of the weights")
        self.decode_threshold = decode_threshold
        self.hierarchy_consistent = hierarchy_consistent
        self.label_pretraining_steps = label_pretraining_steps or 0
        self.label_pretraining_learning_rate = label_pretraining_learning_rate
        self.label_pretraining_batch_size = label_pretraining_batch_size
        self.label_pretraining_losses: list[float] = []
        # seconds of the last train() call's label pre-training, stage set-up included (None: no stage ran)
        self.label_pretraining_runtime: float | None = None
        # HBGL, HPT and the stock multi-label head all return a *mean* loss and ignore ``num_items_in_batch``; a
        # forward with ``**kwargs`` (BertForSequenceClassification) would make the Trainer skip the division by
        # the accumulation steps (hf-notes §3.2), doubling the flat baseline's gradient at GA 2.
        self.model_accepts_loss_kwargs = False
        # paper: model selection by macro-F1. TrainingArguments fills in "loss" whenever load_best_model_at_end is
        # set without a metric, so "loss" is read as "not chosen"; select by the loss with "eval_loss".
        if self.args.metric_for_best_model in (None, "loss"):
            if self.args.load_best_model_at_end:
                logger.warning("HierarchicalTrainer selects the best checkpoint by macro_f1 (pass "
                               "metric_for_best_model='eval_loss' to select by the loss)")
            self.args.metric_for_best_model, self.args.greater_is_better = "macro_f1", True

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        """The Trainer's optimiser, with ``head_learning_rate`` for the parameters outside the encoder and
        ``label_learning_rate`` for the label rows."""
        optimizer = super().create_optimizer(model)
        # later calls return the same optimiser, wrapped by Accelerate after the first train(): split its groups
        # and hook it once (twice would reset the head's scheduled rate and scale the label rows twice)
        inner = getattr(optimizer, "optimizer", optimizer)
        if getattr(inner, "_htc_learning_rates_set", False):
            return optimizer
        model = self.accelerator.unwrap_model(self.model if model is None else model)
        if self.head_learning_rate is not None:
            split_head_learning_rate(inner, model, self.head_learning_rate)
        if self.label_learning_rate is not None:  # DeepSpeed and FSDP were refused in __init__
            scale_label_row_updates(inner, model, self.label_learning_rate)
        elif self.label_learning_rate_factor is not None:
            obstacle = label_row_obstacle(inner, model) if self.args.learning_rate > 0 else "the learning rate is 0"
            if obstacle is None:
                scale_label_row_updates(inner, model, self.label_learning_rate_factor * self.args.learning_rate)
            else:
                self._skip_label_learning_rate_factor(obstacle)
        inner._htc_learning_rates_set = True
        return optimizer

    def _skip_label_learning_rate_factor(self, reason: str) -> None:
        if self.label_learning_rate_factor is not None:
            logger.info("the label rows keep the learning rate, not the recipe's %gx: %s",
                        self.label_learning_rate_factor, reason)
            self.label_learning_rate_factor = None

    def _label_pretraining(self, model: nn.Module) -> None:
        logger.info(f"HBGL stage 1: {self.label_pretraining_steps} steps of label-embedding pre-training")
        start = time.perf_counter()
        self.label_pretraining_losses = run_label_pretraining(
            model, self.args, self.label_pretraining_steps, self.label_pretraining_learning_rate,
            self.label_pretraining_batch_size)
        self.label_pretraining_runtime = round(time.perf_counter() - start, 4)

    def call_model_init(self, trial: Any = None) -> nn.Module:
        """With ``model_init``, ``train()`` builds a fresh model: the label pre-training runs on that one."""
        model = super().call_model_init(trial)
        if self._label_pretraining_on_init and hasattr(model, "pretrain_label_embeddings"):
            self._label_pretraining(model)
        return model

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any):
        """Label-embedding pre-training (HBGL, when ``label_pretraining_steps`` > 0 and not resuming), then the
        usual fine-tuning. With ``model_init`` the stage runs on the model that ``train()`` builds. The stage's
        seconds are reported as ``label_pretraining_runtime`` in the returned metrics (``train_runtime`` counts the
        fine-tuning only)."""
        two_stage = self.label_pretraining_steps > 0 and not resume_from_checkpoint
        self.label_pretraining_losses, self.label_pretraining_runtime = [], None
        if two_stage and self.model_init is not None:
            self._label_pretraining_on_init = True
            try:
                output = super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)
            finally:
                self._label_pretraining_on_init = False
        else:
            if two_stage and hasattr(self.model, "pretrain_label_embeddings"):
                self._label_pretraining(self.model)
            output = super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)
        if self.label_pretraining_runtime is not None:  # the Trainer's train_runtime counts fine-tuning only
            output.metrics["label_pretraining_runtime"] = self.label_pretraining_runtime
            self.log({"label_pretraining_runtime": self.label_pretraining_runtime})  # log_history and reporters
        return output

    def prediction_step(self, model: nn.Module, inputs: dict[str, Any], prediction_loss_only: bool,
                        ignore_keys: list[str] | None = None):
        """Loss as in training (teacher-forced for HBGL), predictions by ``decode()``:
        returns ``(loss, (selected, probabilities), labels)`` with ``[B, L]`` tensors."""
        unwrapped = self.accelerator.unwrap_model(model)
        if not hasattr(unwrapped, "decode"):  # the flat baseline: threshold its logits
            loss, logits, labels = super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
            if logits is None:
                return loss, None, labels
            logits = logits[0] if isinstance(logits, tuple) else logits
            probabilities = torch.sigmoid(logits.float())
            threshold = self.decode_threshold if self.decode_threshold is not None \
                else getattr(unwrapped.config, "decode_threshold", None) or 0.5  # a tuned one (threshold_tuning)
            return loss, ((probabilities > threshold).float(), probabilities), labels
        inputs = self._prepare_inputs(inputs)
        labels = inputs.get("labels")
        loss = None
        with torch.no_grad():
            if labels is not None:
                with self.compute_loss_context_manager():
                    loss = self.compute_loss(model, inputs).detach().mean()
            if prediction_loss_only:
                return loss, None, None
            decoded = unwrapped.decode(inputs["input_ids"], inputs.get("attention_mask"), inputs.get("token_type_ids"),
                                       threshold=self.decode_threshold, hierarchy_consistent=self.hierarchy_consistent)
        return loss, (decoded.selected.float(), decoded.probabilities.float()), labels
