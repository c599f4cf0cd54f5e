"""Benchmark preparation: raw WOS / NYT / RCV1-v2 files -> dataset folders with the standard splits.

Each command writes ``train.jsonl``, ``dev.jsonl``, ``test.jsonl`` (``{"text", "labels"}``, labels as
ancestor-closed names) and ``taxonomy.json``, the layout :func:`htc_tools.data.load_dataset_dir` reads.
Run ``htc-prepare {wos,nyt,rcv1} --help``. The splits follow the HGCLR pipeline that HBGL and HPT share
(../shared/design/reference-notes.md §4).
"""
