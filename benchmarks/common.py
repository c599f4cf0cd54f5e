"""Shared by the benchmark scripts: the machine line, the shared data folders and BENCHMARKS.md sections."""

from __future__ import annotations

import os
import platform
import re
import shlex
import sys
from pathlib import Path

import torch
import transformers

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
BENCHMARKS_MD = REPO / "BENCHMARKS.md"


def machine() -> str:
    """One line naming the hardware and the software versions a figure was measured with."""
    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    else:
        device = f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, " \
                 f"{torch.get_num_threads()} torch threads"
    return f"{device}; python {platform.python_version()}, torch {torch.__version__}, " \
           f"transformers {transformers.__version__}"


def command() -> str:
    return "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])


def write_section(name: str, body: str) -> None:
    """Replace (or append) the ``<!-- name:start -->`` ... ``<!-- name:end -->`` block of BENCHMARKS.md."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = BENCHMARKS_MD.read_text(encoding="utf-8") if BENCHMARKS_MD.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    BENCHMARKS_MD.write_text(text, encoding="utf-8")


def load_now() -> str:
    """The 1/5/15-minute load averages ("1.10 1.76 1.98"): the shared machine's load at a timing."""
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
