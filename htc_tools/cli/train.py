"""``htc-train``: fine-tune a hierarchical text classifier with the Trainer, shaped like transformers'
``run_glue.py`` / ``run_classification.py``.

    htc-train --model_type hbgl --output_dir runs/hbgl \\
        --do_train --do_eval --do_predict --eval_strategy epoch --save_strategy epoch --load_best_model_at_end

``--model_type``: ``hbgl`` (Jiang et al. 2022), ``hpt`` (Wang et al. 2022), ``flat`` (the stock
``AutoModelForSequenceClassification`` multi-label baseline; its new head's bias starts at the label priors,
``--classifier_bias_init zero`` for the stock start) or ``embed_lr`` (frozen sentence embeddings + one logistic
regression per label). Defaults: the embedded ICD-10-CM demo data
(``examples/data/icd10cm``) and the embedded all-MiniLM-L6-v2 encoder (``--model_name_or_path embedded-minilm``,
from the ``demo`` extra). Multi-GPU / multi-CPU: ``accelerate launch`` or ``torchrun`` this module
(``python -m htc_tools.cli.train``) or ``examples/run_hierarchical_classification.py`` (a thin wrapper).

Writes to ``--output_dir``: ``all_results.json`` (``eval_*``/``test_*`` micro/macro-F1 and the hierarchical
metrics), ``test_predictions.jsonl`` (label names and scores) and the model folder (safetensors, model code,
tokenizer, the ``hierarchical-text-classification`` pipeline and a model card), which reloads with
``AutoModel.from_pretrained(dir, trust_remote_code=True)`` and ``pipeline(model=dir, trust_remote_code=True)``.
Training defaults are the recipe measured in BENCHMARKS.md ("Worth using?") instead of the Trainer's: 10 epochs,
batch 16 per device, 5 % warm-up, and learning rate 5e-4 with ``--model_name_or_path embedded-minilm`` (else 5e-5),
where HBGL's and HPT's label rows train at 10x that rate; HBGL runs 100 label pre-training steps before fine-tuning
a new model. Every flag overrides them.
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
from datasets import DatasetDict
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    HfArgumentParser,
    PretrainedConfig,
    TrainingArguments,
    set_seed,
)

from hbgl_hf import HBGLForHierarchicalClassification
from hpt_hf import HPTForHierarchicalClassification
from htc_tools.data import find_taxonomy_file, load_dataset_dir, tokenize_dataset
from htc_tools.data_sources import load_raw_splits
from htc_tools.early_stopping import MacroMicroEarlyStopping
from htc_tools.embed_lr import EmbedLRConfig
from htc_tools.embed_lr_training import DEFAULT_C, load_or_fit_embed_lr
from htc_tools.hub import push_model_folder, save_model_folder
from htc_tools.label_formats import LabelColumns, prepare_labelled_splits
from htc_tools.memory import bound_onednn_caches
from htc_tools.run_checks import (
    check_output_dir,
    check_requested_splits,
    check_splits_present,
    clear_output_dir,
    hierarchy_mismatch,
    label_names_mismatch,
    parse_config_overrides,
)
from htc_tools.taxonomy import Taxonomy, load_taxonomy
from htc_tools.threshold_tuning import OBJECTIVES, tune_model_thresholds
from htc_tools.trainer import HierarchicalTrainer
from htc_tools.training import (
    EMBEDDED_ENCODER,
    init_classifier_bias,
    init_label_score_bias,
    label_prior_logits,
    make_compute_metrics,
    resolve_model_path,
    selections_to_names,
)

logger = logging.getLogger(__name__)
# the embedded demo data of a source checkout (examples/data/icd10cm); absent from an installed package
DEFAULT_DATA = str(Path(__file__).resolve().parents[2] / "examples" / "data" / "icd10cm")
MODEL_CLASSES = {"hbgl": HBGLForHierarchicalClassification, "hpt": HPTForHierarchicalClassification}
# The recipe measured on the shared datasets (BENCHMARKS.md "Worth using?"), the CLI's defaults in place of the
# Trainer's (3 epochs, batch 8, no warm-up): at 3 epochs HBGL and HPT stayed below frozen embeddings + logistic
# regression there, at 10 they passed it.
RECIPE_TRAINING_DEFAULTS = {"num_train_epochs": 10.0, "per_device_train_batch_size": 16, "warmup_steps": 0.05}
# measured with the embedded 6-layer MiniLM only; other encoders keep the Trainer's 5e-5 (the papers' range)
RECIPE_LEARNING_RATE = 5e-4
TRAINER_LEARNING_RATE = TrainingArguments.__dataclass_fields__["learning_rate"].default  # 5e-5
RECIPE_LABEL_PRETRAINING_STEPS = 100  # HBGL's global stage for a new model (Alg. 1; the papers: 300-1000)
# HBGL's and HPT's label rows at 10x the encoder's rate (5e-3 at 5e-4), with the embedded encoder where it was
# measured: test macro-F1 rose in 7 of 8 paired runs on rcv1_sample and amazon_hier (BENCHMARKS.md "Worth using?")
RECIPE_LABEL_LEARNING_RATE_FACTOR = 10.0


@dataclass
class ModelArguments:
    model_type: str = field(default="hbgl", metadata={
        "help": "hbgl, hpt, flat or embed_lr (frozen sentence embeddings + one logistic regression per label)",
        "choices": ["hbgl", "hpt", "flat", "embed_lr"]})
    model_name_or_path: str = field(
        default=EMBEDDED_ENCODER,
        metadata={"help": "an encoder: BERT, RoBERTa/XLM-R, ELECTRA, DistilBERT, DeBERTa-v2/v3 or ModernBERT (local "
                          f"folder or Hub id; '{EMBEDDED_ENCODER}': the embedded all-MiniLM-L6-v2), or a trained "
                          "model folder of the same --model_type to continue from"},
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
    label_pretraining_steps: int | None = field(
        default=None, metadata={"help": "HBGL: label-embedding pre-training steps before fine-tuning (paper: "
                                        f"300-1000; default {RECIPE_LABEL_PRETRAINING_STEPS} for a new model, 0 "
                                        "when continuing from a trained HBGL folder)%(default).0s"})  # no "None"
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
    label_learning_rate: float | None = field(
        default=None, metadata={"help": "hbgl/hpt: learning rate of the label rows of the word-embedding table "
                                        "(HPT: with its virtual depth tokens and [PRED]; AdamW/Adam/SGD/RMSprop, "
                                        "not DeepSpeed or FSDP). Default: 10x --learning_rate with the embedded "
                                        "encoder, where the recipe was measured, if those hold (else logged); "
                                        "--learning_rate otherwise"})
    early_stopping_patience: int | None = field(
        default=None, metadata={"help": "stop after this many evaluations without a better metric_for_best_model "
                                        "(HPT paper: 6 epochs on macro-F1; needs --load_best_model_at_end)"})
    early_stopping_rule: str = field(
        default="metric", metadata={"help": "'metric': no better metric_for_best_model (HPT paper); "
                                            "'macro_or_micro': neither macro- nor micro-F1 better (HPT authors' code)",
                                    "choices": ["metric", "macro_or_micro"]})


@dataclass
class DataArguments:
    dataset_name: str | None = field(
        default=None, metadata={"help": "a Hub dataset id or a local dataset folder (Parquet / JSON Lines / CSV files "
                                        "named by split, or a save_to_disk folder), read with datasets.load_dataset"})
    dataset_config_name: str | None = field(default=None, metadata={"help": "the Hub dataset's configuration"})
    train_file: str | None = field(default=None, metadata={"help": "a .jsonl / .json / .csv / .parquet file"})
    validation_file: str | None = field(default=None, metadata={"help": "the dev split (any of these formats)"})
    test_file: str | None = field(default=None, metadata={"help": "the test split (any of these formats)"})
    dataset_dir: str | None = field(
        default=None, metadata={"help": "a folder with train/dev/test .jsonl|.csv + a taxonomy file (default: the "
                                        "embedded ICD-10-CM demo data when no other data is given); without a "
                                        "taxonomy file it is read like --dataset_name"})
    taxonomy_file: str | None = field(
        default=None, metadata={"help": "the label hierarchy (default: found in --dataset_dir / a --dataset_name "
                                        "folder; else inferred from label paths or level columns)"})
    text_column_name: str = field(
        default="text", metadata={"help": "the text column, or several joined by --text_column_delimiter: "
                                          "'title,body'"})
    text_column_delimiter: str = field(default=" ", metadata={"help": "joins several text columns"})
    label_column_name: str | None = field(default=None, metadata={"help": "the label column (default: labels, else "
                                                                           "label)"})
    label_level_columns: str | None = field(
        default=None, metadata={"help": "one column per level, root first: 'cat1,cat2,cat3' (a null ends a path)"})
    label_path_separator: str | None = field(
        default=None, metadata={"help": "labels are root-to-leaf paths written as strings joined by this, e.g. ' > '"})
    label_separator: str = field(default=";", metadata={"help": "joins several labels (names or paths) in one string "
                                                                "cell"})
    label_format: str = field(
        default="auto", metadata={"help": "auto (detected, logged), names (leaf or ancestor-closed names; needs a "
                                          "taxonomy file), paths (root-to-leaf paths, several per example allowed), "
                                          "path (one path per example as a list of names)",
                                  "choices": ["auto", "names", "paths", "path"]})
    max_seq_length: int = field(default=128)
    unknown_labels: str = field(default="error", metadata={"help": "'error' or 'drop' (logged with a count)"})
    max_train_samples: int | None = field(default=None)
    max_eval_samples: int | None = field(default=None)
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "replace the contents of a non-empty --output_dir (without it the run stops; "
                                         "--resume_from_checkpoint last continues from its newest checkpoint)"})

    def label_columns(self) -> LabelColumns:
        """The text and label columns and the label format the flags name."""
        return LabelColumns(
            text_columns=tuple(c.strip() for c in self.text_column_name.split(",") if c.strip()),
            text_delimiter=self.text_column_delimiter, label_column=self.label_column_name,
            level_columns=tuple(c.strip() for c in (self.label_level_columns or "").split(",") if c.strip()),
            path_separator=self.label_path_separator, label_separator=self.label_separator,
            label_format=self.label_format)

    def uses_dataset_dir(self) -> bool:
        """Whether the data is a --dataset_dir of this project's layout (split files + a taxonomy file, labels as
        names in a ``labels`` column), read by :func:`~htc_tools.data.load_dataset_dir` with per-line checks."""
        if self.dataset_name or self.train_file or self.validation_file or self.test_file:
            return False
        custom = (self.label_column_name, self.label_level_columns, self.label_path_separator)
        if any(custom) or self.label_format != "auto" or self.text_column_name != "text":
            return False
        return bool(self.taxonomy_file) or _has_taxonomy_file(self.data_folder())

    def data_folder(self) -> str:
        return self.dataset_dir or DEFAULT_DATA


def _has_taxonomy_file(folder: str) -> bool:
    try:
        find_taxonomy_file(folder)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


def load_data(data_args: DataArguments, training_args: TrainingArguments) -> tuple[DatasetDict, Taxonomy]:
    """The prepared splits (``train``/``dev``/``test``: ``text``, ``label_names``, ``labels``) and the taxonomy,
    from --dataset_dir (this project's layout) or any dataset ``datasets.load_dataset`` reads (--dataset_name,
    --train_file ...). The splits the flags need are checked before anything else loads."""
    if data_args.uses_dataset_dir():
        check_requested_splits(data_args.data_folder(), training_args)
        return load_dataset_dir(data_args.data_folder(), data_args.taxonomy_file,
                                unknown_labels=data_args.unknown_labels)
    source = data_args.dataset_name or data_args.dataset_dir
    raw = load_raw_splits(source, data_args.dataset_config_name, train_file=data_args.train_file,
                          validation_file=data_args.validation_file, test_file=data_args.test_file)
    check_splits_present(raw.keys(), source or "--train_file/--validation_file/--test_file", training_args)
    taxonomy_file = data_args.taxonomy_file
    if taxonomy_file is None and source and _has_taxonomy_file(source):
        taxonomy_file = str(find_taxonomy_file(source))
    taxonomy = load_taxonomy(taxonomy_file) if taxonomy_file else None
    if taxonomy_file:
        logger.info("taxonomy from %s: %d labels", taxonomy_file, taxonomy.num_labels)
    return prepare_labelled_splits(raw, data_args.label_columns(), taxonomy, data_args.unknown_labels)


def early_stopping_callbacks(model_args: ModelArguments) -> list | None:
    """The paper's rule (the Trainer's callback on metric_for_best_model) or the HPT authors' (reference P6)."""
    if not model_args.early_stopping_patience:
        return None
    if model_args.early_stopping_rule == "macro_or_micro":
        return [MacroMicroEarlyStopping(model_args.early_stopping_patience)]
    return [EarlyStoppingCallback(model_args.early_stopping_patience)]


def build_model(model_args: ModelArguments, taxonomy, tokenizer, path: str, train_labels=None,
                config: PretrainedConfig | None = None):
    """A new model on an encoder, or a trained HBGL/HPT folder of ``--model_type`` (hierarchy checked).
    ``train_labels`` (multi-hot rows) set a new flat head's bias to the label priors (``--classifier_bias_init``).
    ``--config_overrides`` keys and a trained folder's labels are checked before any weights load. ``config``:
    ``path``'s (loaded here when not given)."""
    config = config or AutoConfig.from_pretrained(path, trust_remote_code=True)
    trained = config.model_type in MODEL_CLASSES
    if model_args.model_type in MODEL_CLASSES and not trained:
        schema = MODEL_CLASSES[model_args.model_type].config_class()
    else:
        schema = config
    overrides = parse_config_overrides(model_args.config_overrides, schema,
                                       f" for --model_type {model_args.model_type}")
    if model_args.model_type == "flat":
        mismatch = label_names_mismatch(config, taxonomy) if config.problem_type == "multi_label_classification" \
            else None  # a trained flat head: its rows are labels
        if mismatch:
            raise ValueError(f"{path} was trained on other labels than the taxonomy's: {mismatch}")
        model, loading = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=taxonomy.num_labels, problem_type="multi_label_classification",
            id2label=dict(enumerate(taxonomy.labels)), label2id=taxonomy.label2id, output_loading_info=True,
            **overrides)
        model.config.label_parents = [list(p) for p in taxonomy.parents]  # the hierarchy, saved with the model
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


def dataset_card_source(data_args: DataArguments) -> str:
    """The dataset as the user named it (Hub id, folder or train file); the card writes a Hub id to ``datasets``
    and a local path only by its folder name."""
    return data_args.dataset_name or data_args.dataset_dir or data_args.train_file or str(DEFAULT_DATA)


def write_predictions(path: Path, texts: list[str], predictions: tuple[np.ndarray, np.ndarray], taxonomy) -> None:
    selected, probabilities = predictions
    with open(path, "w", encoding="utf-8") as f:
        for text, names, row, on in zip(texts, selections_to_names(selected, taxonomy), probabilities, selected,
                                        strict=True):
            chosen = np.flatnonzero(on)
            scores = [round(float(p), 4) for p in row[chosen]]
            paths = [taxonomy.path_names(int(i)) for i in chosen]  # display names, root to label
            f.write(json.dumps({"text": text, "labels": names, "scores": scores, "paths": paths},
                               ensure_ascii=False) + "\n")


def parse_arguments(argv: list[str]) -> tuple[ModelArguments, DataArguments, TrainingArguments]:
    """The three argument groups. An explicit ``--metric_for_best_model loss`` (any form argparse takes) becomes
    ``eval_loss``: HierarchicalTrainer reads a bare "loss" as TrainingArguments' default and selects by macro-F1."""
    parser = HfArgumentParser((ModelArguments, DataArguments, TrainingArguments))
    # the recipe's learning rate depends on the encoder: resolved before the dataclasses are built, because
    # TrainingArguments.__post_init__ already copies it (e.g. into a DeepSpeed config's "auto" entries)
    parser.set_defaults(**RECIPE_TRAINING_DEFAULTS, learning_rate=None)  # None: not given (abbreviated flags too)
    first, _ = parser.parse_known_args([a for a in argv if a not in ("-h", "--help")])
    if first.learning_rate is None:
        parser.set_defaults(learning_rate=RECIPE_LEARNING_RATE if first.model_name_or_path == EMBEDDED_ENCODER
                            else TRAINER_LEARNING_RATE)
    parser._option_string_actions["--learning_rate"].help = (
        f"AdamW's initial learning rate ({RECIPE_LEARNING_RATE:g} with --model_name_or_path {EMBEDDED_ENCODER}, where "
        f"the recipe was measured; else the Trainer's {TRAINER_LEARNING_RATE:g})")
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    # the first pass is argparse's own reading (abbreviated flags included), before __post_init__ fills in "loss"
    if first.metric_for_best_model == "loss":
        training_args.metric_for_best_model = "eval_loss"
    return model_args, data_args, training_args


def resolve_label_pretraining_steps(model_args: ModelArguments, config: PretrainedConfig) -> int:
    """``--label_pretraining_steps``, or by default the recipe's steps for a new HBGL model and none for a trained
    HBGL folder (``config``: ``--model_name_or_path``'s; its label rows are trained already) or another model type."""
    if model_args.label_pretraining_steps is not None:
        return model_args.label_pretraining_steps
    if model_args.model_type != "hbgl" or config.model_type == "hbgl":
        return 0
    return RECIPE_LABEL_PRETRAINING_STEPS


def recipe_label_learning_rate_factor(model_args: ModelArguments) -> float | None:
    """The recipe's label-row rate as a factor of ``--learning_rate`` (``RECIPE_LABEL_LEARNING_RATE_FACTOR``) for
    HBGL and HPT on the embedded encoder, where it was measured, when ``--label_learning_rate`` is not given; else
    None. HierarchicalTrainer applies it where the label rows can have their own rate (else logs why not)."""
    if (model_args.label_learning_rate is not None or model_args.model_type not in ("hbgl", "hpt")
            or model_args.model_name_or_path != EMBEDDED_ENCODER):
        return None
    return RECIPE_LABEL_LEARNING_RATE_FACTOR


def main(argv: list[str] | None = None) -> dict[str, float]:
    bound_onednn_caches()  # before the first oneDNN kernel of the process: see htc_tools/memory.py
    argv = list(sys.argv[1:] if argv is None else argv)
    model_args, data_args, training_args = parse_arguments(argv)
    if model_args.label_learning_rate is not None and model_args.model_type not in ("hbgl", "hpt"):
        raise ValueError(f"--label_learning_rate is for hbgl and hpt (their label rows), not --model_type "
                         f"{model_args.model_type}")
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.utils.logging.set_verbosity_warning()
    label_factor = recipe_label_learning_rate_factor(model_args)
    if model_args.model_type != "embed_lr":
        logger.info("learning rate %g%s, %g epochs, batch %d per device, warm-up %g (defaults: the recipe of "
                    "BENCHMARKS.md \"Worth using?\")", training_args.learning_rate,
                    "" if label_factor is None else f" (label rows {label_factor:g}x)",
                    training_args.num_train_epochs, training_args.per_device_train_batch_size,
                    training_args.warmup_steps)
    set_seed(training_args.seed)
    # --push_to_hub: one push of the final folder with our model card (below), not the Trainer's checkpoint pushes
    push_to_hub, training_args.push_to_hub = training_args.push_to_hub, False
    # before anything loads: an --output_dir that this run may write to, the splits the flags need (load_data)
    resume = check_output_dir(training_args, data_args.overwrite_output_dir, {
        "--dataset_dir": data_args.dataset_dir, "--dataset_name": data_args.dataset_name,
        "--train_file": data_args.train_file, "--validation_file": data_args.validation_file,
        "--test_file": data_args.test_file, "--taxonomy_file": data_args.taxonomy_file,
        "--model_name_or_path": model_args.model_name_or_path})

    splits, taxonomy = load_data(data_args, training_args)
    for split, limit in (("train", data_args.max_train_samples), ("dev", data_args.max_eval_samples),
                         ("test", data_args.max_eval_samples)):
        if limit and split in splits:
            splits[split] = splits[split].select(range(min(limit, len(splits[split]))))
    path = resolve_model_path(model_args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    train_labels = splits["train"]["labels"] if training_args.do_train and "train" in splits else None
    fit_seconds, label_pretraining_steps = None, 0
    if model_args.model_type == "embed_lr":  # frozen encoder + per-label logistic regressions, fitted here
        overrides = parse_config_overrides(model_args.config_overrides, EmbedLRConfig(), " for --model_type embed_lr")
        model, fit_seconds = load_or_fit_embed_lr(
            path, tokenizer, taxonomy, splits.get("train") if training_args.do_train else None, model_args.embed_lr_c,
            data_args.max_seq_length, overrides)
    else:
        config = AutoConfig.from_pretrained(path, trust_remote_code=True)
        label_pretraining_steps = resolve_label_pretraining_steps(model_args, config)
        model = build_model(model_args, taxonomy, tokenizer, path, train_labels, config)
    tokenized = tokenize_dataset(splits, tokenizer, data_args.max_seq_length)
    if data_args.overwrite_output_dir:
        clear_output_dir(training_args)
    trainer = HierarchicalTrainer(
        model=model, args=training_args, train_dataset=tokenized.get("train"), eval_dataset=tokenized.get("dev"),
        processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=make_compute_metrics(taxonomy), decode_threshold=model_args.threshold,
        hierarchy_consistent=model_args.hierarchy_consistent or None,
        label_pretraining_steps=label_pretraining_steps,
        label_pretraining_learning_rate=model_args.label_pretraining_learning_rate,
        label_pretraining_batch_size=model_args.label_pretraining_batch_size,
        callbacks=early_stopping_callbacks(model_args), head_learning_rate=model_args.head_learning_rate,
        label_learning_rate=model_args.label_learning_rate, label_learning_rate_factor=label_factor,
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
        card = {"base_model": model_args.model_name_or_path,  # the card maps embedded-minilm, drops a local path
                "dataset_name": dataset_card_source(data_args),
                "results": results,
                "widget_texts": list(splits["train"]["text"][:3]) if "train" in splits else None}
        save_model_folder(trainer.model, tokenizer, out_dir, repo_id=training_args.hub_model_id, **card)
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


def entry_point() -> None:
    """The ``htc-train`` console script: :func:`main` on ``sys.argv``, then a clean exit under torchrun."""
    main()
    if torch.distributed.is_available() and torch.distributed.is_initialized():  # a clean exit under torchrun
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    entry_point()
