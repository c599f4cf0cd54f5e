#!/usr/bin/env python
"""Fine-tune a hierarchical text classifier with the Trainer, shaped like transformers' ``run_glue.py``.

    python examples/run_hierarchical_classification.py --model_type hbgl --output_dir runs/hbgl \\
        --do_train --do_eval --do_predict --eval_strategy epoch --save_strategy epoch --load_best_model_at_end

``--model_type``: ``hbgl`` (Jiang et al. 2022), ``hpt`` (Wang et al. 2022) or ``flat`` (the stock
``AutoModelForSequenceClassification`` multi-label baseline; its new head's bias starts at the label priors,
``--classifier_bias_init zero`` for the stock start). Defaults: the embedded ICD-10-CM demo data
(``examples/data/icd10cm``) and the embedded all-MiniLM-L6-v2 encoder (``--model_name_or_path embedded-minilm``,
from the ``demo`` extra). Multi-GPU / multi-CPU: ``accelerate launch`` or ``torchrun`` this script.

Writes to ``--output_dir``: ``all_results.json`` (``eval_*``/``test_*`` micro/macro-F1 and the hierarchical
metrics), ``test_predictions.jsonl`` (label names and scores) and the model folder (safetensors, model code,
tokenizer, the ``hierarchical-text-classification`` pipeline and a model card), which reloads with
``AutoModel.from_pretrained(dir, trust_remote_code=True)`` and ``pipeline(model=dir, trust_remote_code=True)``.
A non-empty ``--output_dir`` stops the run unless ``--overwrite_output_dir`` (its contents are replaced) or
``--resume_from_checkpoint`` (a checkpoint folder, or ``last``: the newest ``checkpoint-N`` in it).
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    HfArgumentParser,
    TrainingArguments,
    set_seed,
)

from hbgl_hf import HBGLForHierarchicalClassification
from hpt_hf import HPTForHierarchicalClassification
from htc_tools.data import load_dataset_dir, tokenize_dataset
from htc_tools.early_stopping import MacroMicroEarlyStopping
from htc_tools.embed_lr_training import DEFAULT_C, load_or_fit_embed_lr
from htc_tools.hub import push_model_folder, save_model_folder
from htc_tools.run_checks import (
    check_output_dir,
    check_requested_splits,
    clear_output_dir,
    hierarchy_mismatch,
    label_names_mismatch,
    unknown_config_keys,
)
from htc_tools.threshold_tuning import OBJECTIVES, tune_model_thresholds
from htc_tools.trainer import HierarchicalTrainer
from htc_tools.training import (
    EMBEDDED_ENCODER,
    EMBEDDED_ENCODER_HUB_ID,
    init_classifier_bias,
    init_label_score_bias,
    label_prior_logits,
    make_compute_metrics,
    resolve_model_path,
    selections_to_names,
)

logger = logging.getLogger(__name__)
DEFAULT_DATA = str(Path(__file__).resolve().parent / "data" / "icd10cm")
MODEL_CLASSES = {"hbgl": HBGLForHierarchicalClassification, "hpt": HPTForHierarchicalClassification}


@dataclass
class ModelArguments:
    model_type: str = field(default="hbgl", metadata={
        "help": "hbgl, hpt, flat or embed_lr (frozen sentence embeddings + one logistic regression per label)",
        "choices": ["hbgl", "hpt", "flat", "embed_lr"]})
    model_name_or_path: str = field(
        default=EMBEDDED_ENCODER,
        metadata={"help": f"a BERT-family encoder (local folder or Hub id; '{EMBEDDED_ENCODER}': the embedded "
                          "all-MiniLM-L6-v2), or a trained model folder of the same --model_type to continue from"},
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "method switches as 'key=value,key=value', e.g. HBGL 'loss_columns=all,label_init=sum', "
                          "HPT 'zmlce_mode=per_example_global,template_text_sep=false' (see the config docstrings)"},
    )
    threshold: float | None = field(default=None, metadata={"help": "select labels with probability > threshold "
                                                                    "(default: the model's, 0.5)"})
    hierarchy_consistent: bool = field(default=False,
                                       metadata={"help": "predict a label only below a selected parent"})
    label_pretraining_steps: int = field(default=0, metadata={"help": "HBGL: label-embedding pre-training steps "
                                                                      "(paper: 300-1000) before fine-tuning"})
    label_pretraining_learning_rate: float = field(default=1e-3)
    label_pretraining_batch_size: int = field(default=32)
    classifier_bias_init: str = field(
        default="prior", metadata={"help": "flat: 'prior' (a new head's bias = the training labels' log-odds) or "
                                           "'zero' (the stock initialisation)", "choices": ["prior", "zero"]})
    embed_lr_c: float = field(default=DEFAULT_C, metadata={"help": "embed_lr: the logistic regressions' C"})
    tune_threshold: str = field(
        default="none", metadata={"help": "tune the decision threshold on dev after training and save it in the "
                                          "config: 'global', 'per_level' or 'none'",
                                  "choices": ["none", "global", "per_level"]})
    threshold_objective: str = field(default="mean", metadata={"help": "dev objective of --tune_threshold",
                                                               "choices": list(OBJECTIVES)})
    label_score_bias_init: str = field(
        default="paper", metadata={"help": "hbgl/hpt: 'prior' starts each label score's bias at the training "
                                           "labels' log-odds; 'paper' keeps the papers' start",
                                   "choices": ["paper", "prior"]})
    head_learning_rate: float | None = field(
        default=None, metadata={"help": "learning rate of the parameters outside the encoder (heads, HPT's graph "
                                        "layers; default: --learning_rate)"})
    early_stopping_patience: int | None = field(
        default=None, metadata={"help": "stop after this many evaluations without a better metric_for_best_model "
                                        "(HPT paper: 6 epochs on macro-F1; needs --load_best_model_at_end)"})
    early_stopping_rule: str = field(
        default="metric", metadata={"help": "'metric': no better metric_for_best_model (HPT paper); "
                                            "'macro_or_micro': neither macro- nor micro-F1 better (HPT authors' code)",
                                    "choices": ["metric", "macro_or_micro"]})


@dataclass
class DataArguments:
    dataset_dir: str = field(default=DEFAULT_DATA, metadata={"help": "train/dev/test .jsonl|.csv + a taxonomy file"})
    taxonomy_file: str | None = field(default=None, metadata={"help": "default: found in dataset_dir"})
    max_seq_length: int = field(default=128)
    unknown_labels: str = field(default="error", metadata={"help": "'error' or 'drop' (logged with a count)"})
    max_train_samples: int | None = field(default=None)
    max_eval_samples: int | None = field(default=None)
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "replace the contents of a non-empty --output_dir (without it the run stops; "
                                         "--resume_from_checkpoint last continues from its newest checkpoint)"})


def early_stopping_callbacks(model_args: ModelArguments) -> list | None:
    """The paper's rule (the Trainer's callback on metric_for_best_model) or the HPT authors' (reference P6)."""
    if not model_args.early_stopping_patience:
        return None
    if model_args.early_stopping_rule == "macro_or_micro":
        return [MacroMicroEarlyStopping(model_args.early_stopping_patience)]
    return [EarlyStoppingCallback(model_args.early_stopping_patience)]


def parse_overrides(text: str | None) -> dict[str, object]:
    """``"a=1,b=false,c=level"`` -> ``{"a": 1, "b": False, "c": "level"}`` (JSON values, else strings)."""
    overrides: dict[str, object] = {}
    for item in filter(None, (text or "").split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--config_overrides: expected key=value, got {item!r}")
        try:
            overrides[key.strip()] = json.loads(value.strip())
        except json.JSONDecodeError:
            overrides[key.strip()] = value.strip()
    return overrides


def build_model(model_args: ModelArguments, taxonomy, tokenizer, path: str, train_labels=None):
    """A new model on an encoder, or a trained HBGL/HPT folder of ``--model_type`` (hierarchy checked).
    ``train_labels`` (multi-hot rows) set a new flat head's bias to the label priors (``--classifier_bias_init``).
    ``--config_overrides`` keys and a trained folder's labels are checked before any weights load."""
    overrides = parse_overrides(model_args.config_overrides)
    config = AutoConfig.from_pretrained(path, trust_remote_code=True)
    trained = config.model_type in MODEL_CLASSES
    if model_args.model_type in MODEL_CLASSES and not trained:
        schema = MODEL_CLASSES[model_args.model_type].config_class()
    else:
        schema = config
    unknown = unknown_config_keys(overrides, schema)
    if unknown:
        raise ValueError(f"--config_overrides: unknown key(s) {', '.join(unknown)} for --model_type "
                         f"{model_args.model_type} (fields of {type(schema).__name__})")
    if model_args.model_type == "flat":
        mismatch = label_names_mismatch(config, taxonomy) if config.problem_type == "multi_label_classification" \
            else None  # a trained flat head: its rows are labels
        if mismatch:
            raise ValueError(f"{path} was trained on other labels than the taxonomy's: {mismatch}")
        model, loading = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=taxonomy.num_labels, problem_type="multi_label_classification",
            id2label=dict(enumerate(taxonomy.labels)), label2id=taxonomy.label2id, output_loading_info=True,
            **overrides)
        if model_args.classifier_bias_init == "prior" and train_labels is not None:
            name = init_classifier_bias(model, label_prior_logits(train_labels), loading["missing_keys"])
            if name:
                logger.info("flat: %s initialised to the training label priors", name)
        return model
    if trained:
        if config.model_type != model_args.model_type:
            raise ValueError(f"{path} holds a {config.model_type} model, not --model_type {model_args.model_type}")
        mismatch = hierarchy_mismatch(config, taxonomy)
        if mismatch:
            raise ValueError(f"{path} was trained on another hierarchy than the taxonomy given: {mismatch}; train "
                             "from an encoder, or use the taxonomy the model was trained on (its config.json)")
        return AutoModel.from_pretrained(path, trust_remote_code=True, **overrides)
    model = MODEL_CLASSES[model_args.model_type].from_encoder(
        path, list(taxonomy.labels), [list(p) for p in taxonomy.parents], tokenizer=tokenizer, **overrides)
    if model_args.label_score_bias_init == "prior" and train_labels is not None:
        logger.info("%s: %s initialised to the training label priors", model_args.model_type,
                    init_label_score_bias(model, label_prior_logits(train_labels)))
    return model


def write_predictions(path: Path, texts: list[str], predictions: tuple[np.ndarray, np.ndarray], taxonomy) -> None:
    selected, probabilities = predictions
    with open(path, "w", encoding="utf-8") as f:
        for text, names, row, on in zip(texts, selections_to_names(selected, taxonomy), probabilities, selected,
                                        strict=True):
            scores = [round(float(p), 4) for p in row[np.flatnonzero(on)]]
            f.write(json.dumps({"text": text, "labels": names, "scores": scores}, ensure_ascii=False) + "\n")


def parse_arguments(argv: list[str]) -> tuple[ModelArguments, DataArguments, TrainingArguments]:
    """The three argument groups. An explicit ``--metric_for_best_model loss`` (or ``=loss``) becomes ``eval_loss``:
    HierarchicalTrainer reads a bare "loss" as TrainingArguments' default and selects by macro-F1."""
    parser = HfArgumentParser((ModelArguments, DataArguments, TrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    chose_metric = any(a == "--metric_for_best_model" or a.startswith("--metric_for_best_model=") for a in argv)
    if chose_metric and training_args.metric_for_best_model == "loss":
        training_args.metric_for_best_model = "eval_loss"
    return model_args, data_args, training_args


def main(argv: list[str] | None = None) -> dict[str, float]:
    argv = list(sys.argv[1:] if argv is None else argv)
    model_args, data_args, training_args = parse_arguments(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.utils.logging.set_verbosity_warning()
    set_seed(training_args.seed)
    # --push_to_hub: one push of the final folder with our model card (below), not the Trainer's checkpoint pushes
    push_to_hub, training_args.push_to_hub = training_args.push_to_hub, False
    # before anything loads: the splits the flags need, and an --output_dir that this run may write to
    check_requested_splits(data_args.dataset_dir, training_args)
    resume = check_output_dir(training_args, data_args.overwrite_output_dir, {
        "--dataset_dir": data_args.dataset_dir, "--taxonomy_file": data_args.taxonomy_file,
        "--model_name_or_path": model_args.model_name_or_path})

    splits, taxonomy = load_dataset_dir(data_args.dataset_dir, data_args.taxonomy_file,
                                        unknown_labels=data_args.unknown_labels)
    for split, limit in (("train", data_args.max_train_samples), ("dev", data_args.max_eval_samples),
                         ("test", data_args.max_eval_samples)):
        if limit and split in splits:
            splits[split] = splits[split].select(range(min(limit, len(splits[split]))))
    path = resolve_model_path(model_args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    train_labels = splits["train"]["labels"] if training_args.do_train and "train" in splits else None
    fit_seconds = None
    if model_args.model_type == "embed_lr":  # frozen encoder + per-label logistic regressions, fitted here
        model, fit_seconds = load_or_fit_embed_lr(
            path, tokenizer, taxonomy, splits.get("train") if training_args.do_train else None, model_args.embed_lr_c,
            data_args.max_seq_length, parse_overrides(model_args.config_overrides))
    else:
        model = build_model(model_args, taxonomy, tokenizer, path, train_labels)
    tokenized = tokenize_dataset(splits, tokenizer, data_args.max_seq_length)
    if data_args.overwrite_output_dir:
        clear_output_dir(training_args)
    trainer = HierarchicalTrainer(
        model=model, args=training_args, train_dataset=tokenized["train"], eval_dataset=tokenized.get("dev"),
        processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=make_compute_metrics(taxonomy), decode_threshold=model_args.threshold,
        hierarchy_consistent=model_args.hierarchy_consistent or None,
        label_pretraining_steps=model_args.label_pretraining_steps,
        label_pretraining_learning_rate=model_args.label_pretraining_learning_rate,
        label_pretraining_batch_size=model_args.label_pretraining_batch_size,
        callbacks=early_stopping_callbacks(model_args), head_learning_rate=model_args.head_learning_rate,
    )
    results: dict[str, float] = {}
    if training_args.do_train and fit_seconds is not None:
        results["train_runtime"] = fit_seconds
    elif training_args.do_train:
        train_result = trainer.train(resume_from_checkpoint=resume)
        results.update({k if k.startswith("train") else f"train_{k}": v for k, v in train_result.metrics.items()})
    if model_args.tune_threshold != "none":
        if "dev" not in tokenized:
            raise ValueError("--tune_threshold needs a dev split")
        if training_args.do_predict and "test" in tokenized:  # the test figures before tuning, for comparison
            untuned = trainer.predict(tokenized["test"], metric_key_prefix="test").metrics
            results.update({f"untuned_{k}": untuned[k] for k in ("test_micro_f1", "test_macro_f1")})
        tuned = tune_model_thresholds(trainer, tokenized["dev"], taxonomy, model_args.tune_threshold,
                                      model_args.threshold_objective)
        results.update({f"tuned_{k}": v for k, v in tuned.items() if v is not None})
    if training_args.do_eval and "dev" in tokenized:
        results.update(trainer.evaluate(tokenized["dev"], metric_key_prefix="eval"))
    out_dir = Path(training_args.output_dir)
    if training_args.do_predict and "test" in tokenized:
        output = trainer.predict(tokenized["test"], metric_key_prefix="test")
        results.update(output.metrics)
        if trainer.is_world_process_zero():
            out_dir.mkdir(parents=True, exist_ok=True)
            write_predictions(out_dir / "test_predictions.jsonl", list(splits["test"]["text"]), output.predictions,
                              taxonomy)
    if trainer.is_world_process_zero():
        base_model = model_args.model_name_or_path  # the card drops a local path
        card = {"base_model": EMBEDDED_ENCODER_HUB_ID if base_model == EMBEDDED_ENCODER else base_model,
                "dataset_name": Path(data_args.dataset_dir).name,
                "results": results}
        save_model_folder(trainer.model, tokenizer, out_dir, **card)
        (out_dir / "all_results.json").write_text(json.dumps(results, indent=2))
        if push_to_hub:
            push_model_folder(trainer.model, tokenizer, training_args.hub_model_id or out_dir.name,
                              token=training_args.hub_token, private=training_args.hub_private_repo, **card)
        for split in ("eval", "test"):
            if f"{split}_micro_f1" in results:
                print(f"{model_args.model_type} {split}: micro-F1 {results[f'{split}_micro_f1']:.4f} "
                      f"macro-F1 {results[f'{split}_macro_f1']:.4f} hier-F1 {results[f'{split}_hier_f1']:.4f}")
    trainer.accelerator.wait_for_everyone()  # the other processes wait for the save, then all leave together
    return results


if __name__ == "__main__":
    main()
    if torch.distributed.is_available() and torch.distributed.is_initialized():  # a clean exit under torchrun
        torch.distributed.destroy_process_group()
