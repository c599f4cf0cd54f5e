#!/usr/bin/env python
"""Fine-tune a hierarchical text classifier with the Trainer, shaped like transformers' ``run_glue.py``.

    python examples/run_hierarchical_classification.py --model_type flat --output_dir runs/flat

Defaults: the embedded ICD-10-CM demo data (``examples/data/icd10cm``) and the embedded all-MiniLM-L6-v2
encoder (``--model_name_or_path embedded-minilm``, from the ``demo`` extra). Writes ``all_results.json``
(``eval_*``/``test_*`` micro/macro-F1 and the hierarchical metrics), ``test_predictions.jsonl`` (label names)
and the model folder to ``--output_dir``.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import transformers
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    HfArgumentParser,
    Trainer,
    TrainingArguments,
    set_seed,
)

from htc_tools.data import load_dataset_dir, tokenize_dataset
from htc_tools.training import EMBEDDED_ENCODER, make_compute_metrics, resolve_model_path, selections_to_names, sigmoid

logger = logging.getLogger(__name__)
DEFAULT_DATA = str(Path(__file__).resolve().parent / "data" / "icd10cm")


@dataclass
class ModelArguments:
    model_type: str = field(default="flat", metadata={"help": "flat: AutoModelForSequenceClassification, multi-label"})
    model_name_or_path: str = field(
        default=EMBEDDED_ENCODER,
        metadata={"help": f"local folder or Hub id of a BERT-family encoder; '{EMBEDDED_ENCODER}': the embedded one"},
    )
    threshold: float = field(default=0.5, metadata={"help": "select labels with probability > threshold"})


@dataclass
class DataArguments:
    dataset_dir: str = field(default=DEFAULT_DATA, metadata={"help": "train/dev/test .jsonl|.csv + a taxonomy file"})
    taxonomy_file: str | None = field(default=None, metadata={"help": "default: found in dataset_dir"})
    max_seq_length: int = field(default=128)
    unknown_labels: str = field(default="error", metadata={"help": "'error' or 'drop' (logged with a count)"})
    max_train_samples: int | None = field(default=None)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = HfArgumentParser((ModelArguments, DataArguments, TrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.utils.logging.set_verbosity_warning()
    if model_args.model_type != "flat":
        raise ValueError(f"--model_type {model_args.model_type!r} is not available; choose from ['flat']")
    set_seed(training_args.seed)

    splits, taxonomy = load_dataset_dir(data_args.dataset_dir, data_args.taxonomy_file,
                                        unknown_labels=data_args.unknown_labels)
    if data_args.max_train_samples:
        splits["train"] = splits["train"].select(range(min(data_args.max_train_samples, len(splits["train"]))))
    test_texts = splits["test"]["text"] if "test" in splits else []
    encoder = resolve_model_path(model_args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    model = AutoModelForSequenceClassification.from_pretrained(
        encoder, num_labels=taxonomy.num_labels, problem_type="multi_label_classification",
        id2label=dict(enumerate(taxonomy.labels)), label2id=taxonomy.label2id,
    )
    tokenized = tokenize_dataset(splits, tokenizer, data_args.max_seq_length)
    trainer = Trainer(
        model=model, args=training_args, train_dataset=tokenized["train"], eval_dataset=tokenized.get("dev"),
        processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=make_compute_metrics(taxonomy, model_args.threshold),
    )
    results: dict[str, float] = {}
    if training_args.do_train:
        train_result = trainer.train()
        trainer.save_model()
        results.update({f"train_{k}" if not k.startswith("train") else k: v for k, v in train_result.metrics.items()})
    if training_args.do_eval and "dev" in tokenized:
        results.update(trainer.evaluate(tokenized["dev"], metric_key_prefix="eval"))
    if training_args.do_predict and "test" in tokenized:
        output = trainer.predict(tokenized["test"], metric_key_prefix="test")
        results.update(output.metrics)
        selected = sigmoid(np.asarray(output.predictions)) > model_args.threshold
        out_dir = Path(training_args.output_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        with open(out_dir / "test_predictions.jsonl", "w", encoding="utf-8") as f:
            for text, names in zip(test_texts, selections_to_names(selected, taxonomy), strict=True):
                f.write(json.dumps({"text": text, "labels": names}, ensure_ascii=False) + "\n")
    if trainer.is_world_process_zero():
        Path(training_args.output_dir).mkdir(parents=True, exist_ok=True)
        (Path(training_args.output_dir) / "all_results.json").write_text(json.dumps(results, indent=2))
        for split in ("eval", "test"):
            if f"{split}_micro_f1" in results:
                print(f"{model_args.model_type} {split}: micro-F1 {results[f'{split}_micro_f1']:.4f} "
                      f"macro-F1 {results[f'{split}_macro_f1']:.4f} hier-F1 {results[f'{split}_hier_f1']:.4f}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:] or None)
