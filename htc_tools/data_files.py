"""Record checks for data files before ``datasets`` reads them: a bad record is an error that names the file and
the line (or the row of a ``datasets.Dataset``), instead of a crash later or a silently coerced value.

Each record needs a string ``text`` and ``labels`` that are a list of names in every row (or a string in every
row, split like a CSV cell); a CSV row needs a cell per header column and a label cell that starts with ``[``
must be a JSON list of names.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import datasets


class DataFileError(ValueError):
    """A data file or dataset holds a record that cannot be used; the message names the file and line (or row)."""


class _RecordChecker:
    """Checks one record at a time; remembers whether ``labels`` came as a list or a string, and where."""

    def __init__(self, source: str, text_field: str, label_field: str) -> None:
        self.source, self.text_field, self.label_field = source, text_field, label_field
        self.labels_kind: tuple[str, str] | None = None  # ("a list" | "a string", where first seen)
        self.count = 0

    def error(self, where: str, message: str) -> DataFileError:
        return DataFileError(f"{self.source}, {where}: {message}")

    def check(self, record: object, where: str) -> None:
        if not isinstance(record, dict):
            raise self.error(where, f"expected a JSON object {{{self.text_field!r}: ..., {self.label_field!r}: "
                                    f"[...]}}, got {type(record).__name__}")
        for key in (self.text_field, self.label_field):
            if key not in record:
                raise self.error(where, f"no {key!r} field (fields: {', '.join(map(repr, record)) or 'none'})")
            if record[key] is None:
                raise self.error(where, f"{key!r} is null")
        text, labels = record[self.text_field], record[self.label_field]
        if not isinstance(text, str):
            raise self.error(where, f"{self.text_field!r} must be a string, got {type(text).__name__} {text!r:.40}")
        self.check_labels(labels, where)
        self.count += 1

    def check_labels(self, labels: object, where: str) -> None:
        if isinstance(labels, list):
            bad = next((x for x in labels if not isinstance(x, str)), None)
            if bad is not None or None in labels:
                raise self.error(where, f"{self.label_field!r} must hold label names (strings), found {bad!r}")
            kind = "a list"
        elif isinstance(labels, str):
            kind = "a string"
        else:
            raise self.error(where, f"{self.label_field!r} must be a list of label names, got "
                                    f"{type(labels).__name__} {labels!r:.40}")
        if self.labels_kind is None:
            self.labels_kind = (kind, where)
        elif self.labels_kind[0] != kind:
            raise self.error(where, f"{self.label_field!r} is {kind} ({labels!r:.40}) but {self.labels_kind[0]} at "
                                    f"{self.labels_kind[1]}; give every record a list of label names")

    def finish(self) -> int:
        if not self.count:
            raise DataFileError(f"{self.source}: no records (the file is empty)")
        return self.count


def _numbered_lines(path: Path, skip_blank: bool = True) -> Iterator[tuple[int, str]]:
    """Lines with their 1-based numbers (a leading byte-order mark dropped); a non-UTF-8 byte is an error naming
    the line."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise DataFileError(f"{path}, line {lineno}: not UTF-8 text (byte {raw[err.start]:#04x}); "
                                    "save the file as UTF-8") from None
            if line.strip() or not skip_blank:
                yield lineno, line


def check_json_file(path: Path, text_field: str = "text", label_field: str = "labels") -> int:
    """Check every record of a JSON-lines file (or a ``.json`` array of objects); returns the number of records."""
    checker = _RecordChecker(str(path), text_field, label_field)
    lines = _numbered_lines(path)
    first = next(lines, None)
    if first is not None and first[1].lstrip().startswith("["):  # one JSON array
        text = first[1] + "".join(line for _, line in lines)
        try:
            records = json.loads(text)
        except json.JSONDecodeError as err:
            raise checker.error(f"line {first[0] + err.lineno - 1}", f"malformed JSON: {err.msg}") from None
        for i, record in enumerate(records if isinstance(records, list) else [records]):
            checker.check(record, f"record {i + 1}")
        return checker.finish()
    for lineno, line in _chain(first, lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise checker.error(f"line {lineno}", f"malformed JSON: {err.msg} (column {err.colno})") from None
        checker.check(record, f"line {lineno}")
    return checker.finish()


def _chain(first: tuple[int, str] | None, rest: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    if first is not None:
        yield first
        yield from rest


def check_csv_file(path: Path, text_field: str = "text", label_field: str = "labels", separator: str = ";") -> int:
    """Check every row of a CSV file (a cell per header column, JSON label cells that parse); returns the number
    of rows."""
    checker = _RecordChecker(str(path), text_field, label_field)
    rows = csv.reader(line for _, line in _numbered_lines(path, skip_blank=False))
    header = next(rows, None)
    if header is None:
        raise DataFileError(f"{path}: no records (the file is empty)")
    start = rows.line_num + 1
    for row in rows:
        where, start = f"line {start}", rows.line_num + 1
        if not row:
            continue
        if len(row) != len(header):
            raise checker.error(where, f"{len(row)} cell(s), the header has {len(header)}")
        record = dict(zip(header, row, strict=True))
        if label_field in record:
            cell = record[label_field]
            record[label_field] = (_json_cell(cell, checker, where) if cell.strip().startswith("[")
                                   else split_label_cell(cell, separator))
        checker.check(record, where)
    if not checker.count:
        raise DataFileError(f"{path}: no records (only a header line)")
    return checker.count


def _json_cell(cell: str, checker: _RecordChecker, where: str) -> list:
    try:
        value = json.loads(cell)
    except json.JSONDecodeError as err:
        raise checker.error(where, f"the {checker.label_field!r} cell {cell!r:.60} is not valid JSON ({err.msg}); "
                                   "write a JSON list of names or names joined by the separator") from None
    if not isinstance(value, list):
        raise checker.error(where, f"the {checker.label_field!r} cell {cell!r:.60} is JSON but not a list")
    return [str(x) if isinstance(x, int | float) and not isinstance(x, bool) else x for x in value]  # as read


def split_label_cell(cell: str, separator: str) -> list[str]:
    """A label cell: a JSON list (``["a", "b"]``) or names joined by ``separator``."""
    cell = cell.strip()
    if cell.startswith("["):
        return [str(x) for x in json.loads(cell)]
    return [part.strip() for part in cell.split(separator) if part.strip()]


def check_dataset(ds: datasets.Dataset, name: str, text_field: str = "text", label_field: str = "labels") -> None:
    """Check the text and label columns of an in-memory ``datasets.Dataset`` (errors name the 1-based row)."""
    checker = _RecordChecker(name, text_field, label_field)
    texts: Sequence = ds[text_field]
    labels: Sequence = ds[label_field]
    for i, (text, names) in enumerate(zip(texts, labels, strict=True)):
        checker.check({text_field: text, label_field: names}, f"row {i + 1}")
