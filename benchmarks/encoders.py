#!/usr/bin/env python
"""Speed of HBGL and HPT on each encoder family against the same family's flat model
(AutoModelForSequenceClassification from the same checkpoint), measured in one process and one run, reported
as ratios to flat. Writes the "speed-encoders" section of BENCHMARKS.md.

    python benchmarks/encoders.py --sizes tiny base --taxonomy wos --length 128 --batch_size 8

Checkpoints are randomly initialised ``*ForMaskedLM`` models of each family's config (speed does not depend on
the weights), saved to a temporary folder and built with ``from_encoder`` as a user's checkpoint would be; every
family uses a 30522-word vocabulary so that the sizes differ only by architecture. ``tiny``: width 128, 2 layers;
``base``: the family's base sizes (ModernBERT-base: 22 layers; DistilBERT: 6).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
import transformers as tf
from common import SHARED, command, machine, markdown_table, write_section
from speed import TAXONOMIES, batch, train_step_fn

from hbgl_hf import HBGLForHierarchicalClassification
from hpt_hf import HPTForHierarchicalClassification
from htc_tools.taxonomy import load_taxonomy

VOCAB = 30522
FAMILIES = ("bert", "roberta", "electra", "distilbert", "deberta-v3", "modernbert")


def checkpoint(family: str, size: str) -> torch.nn.Module:
    """A random ``*ForMaskedLM`` of ``family`` at ``size`` (special ids 101-103 as BERT's, for the batches)."""
    tiny = size == "tiny"
    dims = ({"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 512} if tiny
            else {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072})
    special = {"vocab_size": VOCAB, "pad_token_id": 0}
    if family == "bert":
        return tf.BertForMaskedLM(tf.BertConfig(**dims, **special))
    if family == "roberta":
        return tf.RobertaForMaskedLM(tf.RobertaConfig(**dims, vocab_size=VOCAB, pad_token_id=1,
                                                      max_position_embeddings=514, type_vocab_size=1))
    if family == "electra":
        return tf.ElectraForMaskedLM(tf.ElectraConfig(**dims, **special, embedding_size=dims["hidden_size"]))
    if family == "distilbert":
        return tf.DistilBertForMaskedLM(tf.DistilBertConfig(
            vocab_size=VOCAB, dim=dims["hidden_size"], n_layers=2 if tiny else 6, n_heads=dims["num_attention_heads"],
            hidden_dim=dims["intermediate_size"]))
    if family == "deberta-v3":  # deberta-v3-base's settings
        return tf.DebertaV2ForMaskedLM(tf.DebertaV2Config(
            **dims, **special, relative_attention=True, position_buckets=256, pos_att_type=["p2c", "c2p"],
            position_biased_input=False, type_vocab_size=0, share_att_key=True, norm_rel_ebd="layer_norm",
            max_relative_positions=-1, legacy=False))
    if family == "modernbert":
        layers = 2 if tiny else 22
        return tf.ModernBertForMaskedLM(tf.ModernBertConfig(
            vocab_size=VOCAB, hidden_size=dims["hidden_size"], num_hidden_layers=layers,
            num_attention_heads=dims["num_attention_heads"], intermediate_size=dims["intermediate_size"] // 2 * 3 // 2,
            pad_token_id=0, cls_token_id=101, sep_token_id=102, bos_token_id=101, eos_token_id=102))
    raise ValueError(family)


def build_models(folder: Path, taxonomy) -> dict[str, torch.nn.Module]:
    labels, parents = list(taxonomy.labels), [list(p) for p in taxonomy.parents]
    # the batches are ids, not text: a stand-in tokenizer gives BERT's special ids and one word per label name
    special = type("Special", (), {"cls_token_id": 101, "sep_token_id": 102, "mask_token_id": 103,
                                   "unk_token_id": 100, "__call__": lambda self, text, **kw: {
                                       "input_ids": [[1000] for _ in text] if isinstance(text, list) else [1000]}})()
    torch.manual_seed(0)
    return {
        "flat": tf.AutoModelForSequenceClassification.from_pretrained(
            folder, num_labels=len(labels), problem_type="multi_label_classification"),
        "hbgl": HBGLForHierarchicalClassification.from_encoder(str(folder), labels, parents, tokenizer=special),
        "hpt": HPTForHierarchicalClassification.from_encoder(str(folder), labels, parents, tokenizer=special),
    }


def timed_min(fns: dict, repeats: int) -> dict[str, float]:
    """Fastest of ``repeats`` calls of each function after one warm-up, measured round-robin: on a machine shared
    with other jobs the fastest call is the one least slowed by them (the median moves with their load)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def decode_fns(models: dict, ids: torch.Tensor, mask: torch.Tensor) -> dict:
    return {"flat": lambda: models["flat"](input_ids=ids, attention_mask=mask).logits,
            "hbgl": lambda: models["hbgl"].decode(ids, mask), "hpt": lambda: models["hpt"].decode(ids, mask)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "base"], choices=["tiny", "base"])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--taxonomy", default="wos", choices=list(TAXONOMIES))
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dry_run", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    args = parser.parse_args()
    taxonomy = load_taxonomy(SHARED / "taxonomies" / TAXONOMIES[args.taxonomy])
    ids, mask, labels = batch(taxonomy, args.batch_size, args.length)
    load_before = os.getloadavg()[0]
    rows = []
    for size in args.sizes:
        for family in args.families:
            with tempfile.TemporaryDirectory() as tmp:
                torch.manual_seed(0)
                checkpoint(family, size).save_pretrained(tmp)
                models = build_models(Path(tmp), taxonomy)
            with torch.no_grad():
                for model in models.values():
                    model.eval()
                infer = timed_min(decode_fns(models, ids, mask), args.repeats)
            for model in models.values():
                model.train()
            train = timed_min({name: train_step_fn(model, ids, mask, labels) for name, model in models.items()},
                                   args.repeats)
            cache = "cached" if models["hbgl"].supports_cache else "uncached"
            rows.append([family, size, f"{infer['flat'] * 1000:.0f}", f"{infer['hbgl'] / infer['flat']:.2f} ({cache})",
                         f"{infer['hpt'] / infer['flat']:.2f}", f"{train['flat'] * 1000:.0f}",
                         f"{train['hbgl'] / train['flat']:.2f}", f"{train['hpt'] / train['flat']:.2f}"])
            print(rows[-1], flush=True)
            if not args.dry_run:  # after every row: a long run on a loaded machine keeps what it measured
                write_section("speed-encoders", "## Speed per encoder family (CPU)\n\n" +
                              report(args, taxonomy, rows, load_before))
    print(report(args, taxonomy, rows, load_before))


def report(args: argparse.Namespace, taxonomy, rows: list[list[str]], load_before: float) -> str:
    load_after = os.getloadavg()[0]
    table = markdown_table(["family", "size", "flat decode ms", "HBGL decode", "HPT decode", "flat train-step ms",
                            "HBGL train step", "HPT train step"], rows)
    body = (f"Command: `{command()}`  \nMachine: {machine()}; **shared with other sessions**: 1-minute load average "
            f"{load_before:.1f} at the start, {load_after:.1f} at the last row  \n"
            f"Taxonomy {args.taxonomy} (depth {taxonomy.depth}, {taxonomy.num_labels} labels), "
            f"batch {args.batch_size}, length {args.length}; random weights, vocabulary {VOCAB} for every family; "
            f"fastest of {args.repeats} repeats after one warm-up, the three models measured round-robin; "
            "HBGL and HPT as multiples of the same "
            "family's flat model in the same run. Training step: forward + backward + AdamW step. HBGL decodes with "
            "its KV cache where the family can cache (BERT, RoBERTa/XLM-R, ELECTRA), otherwise uncached "
            "(recomputing the sequence at each of the depth's levels). XLM-R is RoBERTa's architecture (not "
            "measured separately). No quality run per family: the package lists searched (PyPI) hold no installable "
            "pretrained English RoBERTa/DeBERTa/ModernBERT/DistilBERT/ELECTRA MLM checkpoint (only task-specific or "
            "Japanese models, whose weights download at run time), so none was tried.\n\n" + table)
    return body


if __name__ == "__main__":
    main()
