"""Labels as datasets carry them -> the prepared columns ``text`` / ``label_names`` / ``labels`` (multi-hot).

Label formats (``--label_format``, else detected from the first labelled row and logged):

* ``names``: label names, leaves only or ancestor-closed (a list, a JSON list in a CSV cell, or a string of names
  joined by ``label_separator``); needs a taxonomy file. A bare name that names several labels is an error
  listing them.
* ``paths``: root-to-label paths, several per example allowed: strings ``"pets > dogs > food"`` split on
  ``path_separator`` (several joined by ``label_separator``), a list of such strings, or a list of lists.
* ``path``: one root-to-label path per example given as a list of names (``["pets", "dogs", "food"]``): what a
  list of names is read as when there is no taxonomy file.
* ``levels``: one column per level (``level_columns``: ``cat1, cat2, cat3``); a null or empty cell ends the path.

ClassLabel columns (``ClassLabel`` or ``Sequence(ClassLabel)``, level columns too) are read through their names
(id ``-1``: no label). Without a taxonomy file, the taxonomy is inferred from the paths of every split
(:meth:`~htc_tools.taxonomy.Taxonomy.from_paths`: ``dogs/food`` and ``cats/food`` are two labels).
"""

from __future__ import annotations

import ast
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import datasets

from .data import PREPARED_FEATURES, UnknownLabelsError, multi_hot
from .data_files import DataFileError
from .taxonomy import AmbiguousLabelError, Taxonomy

logger = logging.getLogger(__name__)

FORMATS = ("auto", "names", "paths", "path", "levels")
FORMAT_WORDS = {"names": "label names (leaves or ancestor-closed)", "paths": "root-to-label paths",
                "path": "one root-to-label path per example (a list of names)", "levels": "level columns"}
Ref = str | tuple[str, ...]  # a label name, or a root-to-label path of names
PATH_MARKS = (">", " / ", " | ")  # in a name list without a taxonomy: path strings (--label_path_separator)


@dataclass(frozen=True)
class LabelColumns:
    """Which columns hold the text and the labels, and how the labels are written."""

    text_columns: tuple[str, ...] = ("text",)
    text_delimiter: str = " "
    label_column: str | None = None  # default: "labels", else "label"
    level_columns: tuple[str, ...] = ()
    path_separator: str | None = None
    label_separator: str = ";"
    label_format: str = "auto"

    def __post_init__(self) -> None:
        if self.label_format not in FORMATS:
            raise ValueError(f"label format {self.label_format!r}: expected one of {', '.join(FORMATS)}")
        if self.level_columns and self.label_format not in ("auto", "levels"):
            raise ValueError(f"level columns and label format {self.label_format!r} exclude each other")
        if self.level_columns and self.label_column:
            raise ValueError("give a label column or level columns, not both")


def label_column(ds: datasets.Dataset, spec: LabelColumns) -> str:
    """The label column: ``spec.label_column``, else ``labels``, else ``label``."""
    column = spec.label_column or next((c for c in ("labels", "label") if c in ds.column_names), None)
    if column is None or column not in ds.column_names:
        raise ValueError(f"no label column {column or 'labels/label'!r}; columns are {ds.column_names}: pass "
                         "--label_column_name or --label_level_columns")
    return column


def class_names(feature: object) -> list[str] | None:
    """The names of a ``ClassLabel`` or ``Sequence(ClassLabel)`` feature, else ``None``."""
    inner = getattr(feature, "feature", feature)
    return list(inner.names) if isinstance(inner, datasets.ClassLabel) else None


def detect_format(ds: datasets.Dataset, spec: LabelColumns, has_taxonomy: bool, name: str = "data") -> str:
    """The label format of ``ds``: the one asked for, else detected from the first labelled row (logged)."""
    if spec.level_columns:
        return "levels"
    if spec.label_format != "auto":
        return spec.label_format
    column = label_column(ds, spec)
    sample = next((v for v in ds.select(range(min(len(ds), 1000)))[column] if v not in (None, [], "")), None)
    if isinstance(sample, str) and sample.strip().startswith("["):  # a CSV cell holding a list
        try:
            sample = list_cell(sample)
        except ValueError:
            pass  # reported with its row when the cells are read
    if class_names(ds.features[column]) is not None or isinstance(sample, str) or sample is None:
        fmt = "paths" if spec.path_separator else "names"
    elif isinstance(sample, list) and any(isinstance(x, list) for x in sample):
        fmt = "paths"
    elif not (spec.path_separator or has_taxonomy) and isinstance(sample, list) and any(
            isinstance(x, str) and mark in x for x in sample for mark in PATH_MARKS):  # with a taxonomy: names
        raise ValueError(f"{name}: the labels in column {column!r} look like root-to-label path strings "
                         f"({sample[:2]!r:.80}); pass --label_path_separator (e.g. ' > '), or --label_format to "
                         "read them as names")
    else:
        fmt = "paths" if spec.path_separator else "names" if has_taxonomy else "path"
    logger.info("%s: labels in column %r read as %s (detected; --label_format to choose)", name, column,
                FORMAT_WORDS[fmt])
    return fmt


def list_cell(text: str) -> list:
    """A CSV cell holding a list: JSON (``["pets", "dogs"]``) or the Python form ``DataFrame.to_csv`` writes
    (``['pets', 'dogs']``, read with ``ast.literal_eval``); ``ValueError`` when it is neither."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise ValueError(f"neither JSON ({err.msg}) nor a Python list") from None
    if not isinstance(value, list):
        raise ValueError(f"a {type(value).__name__}, not a list")
    return value


def texts_of(ds: datasets.Dataset, spec: LabelColumns, name: str = "data") -> list[str]:
    """The text of each row: the text columns joined by ``spec.text_delimiter``; a null or non-string cell is an
    error naming the row."""
    missing = [c for c in spec.text_columns if c not in ds.column_names]
    if missing:
        raise ValueError(f"{name}: no text column(s) {missing}; columns are {ds.column_names}: pass "
                         "--text_column_name")
    columns = [ds[c] for c in spec.text_columns]
    out = []
    for i, cells in enumerate(zip(*columns, strict=True)):
        bad = next((c for c in cells if not isinstance(c, str)), ...)
        if bad is not ...:
            raise DataFileError(f"{name}, row {i + 1}: the text must be a string, got {bad!r:.40}")
        out.append(spec.text_delimiter.join(cells))
    return out


def refs_of(ds: datasets.Dataset, spec: LabelColumns, fmt: str, name: str = "data") -> list[list[Ref]]:
    """Per row, its labels as names (``str``) or root-to-label paths (``tuple``) in format ``fmt``."""
    if fmt == "levels":
        return _level_refs(ds, spec, name)
    column = label_column(ds, spec)
    names = class_names(ds.features[column])
    out = []
    for i, cell in enumerate(ds[column]):
        where = f"{name}, row {i + 1}"
        if names is not None:
            cell = _names_of_ids(cell, names)
        out.append(_cell_refs(cell, fmt, spec, where))
    return out


def _names_of_ids(cell: object, names: list[str]) -> object:
    if isinstance(cell, list):
        return [names[x] for x in cell if x is not None and x >= 0]
    return names[cell] if cell is not None and cell >= 0 else None


def _check_names(items: Sequence[object], where: str) -> list[str]:
    """``items`` stripped (as names in strings and level cells are); a non-string or empty one is an error."""
    bad = next((x for x in items if not isinstance(x, str) or not x.strip()), ...)
    if bad is not ...:
        raise DataFileError(f"{where}: a label must be a non-empty name (string), found {bad!r:.40}")
    return [x.strip() for x in items]


def _split_path(text: str, separator: str | None, where: str) -> tuple[str, ...]:
    """``"pets > dogs"`` -> ``("pets", "dogs")``; a leading or trailing separator adds no level (``"/pets/dogs/"``).
    With a spaced separator (``" > "``), a name holding its bare form (``"pets>dogs"``) is an error: it would
    silently be one label."""
    if not separator:
        steps = [text.strip()]
    else:
        core, body = separator.strip() or separator, text.strip()
        while body.startswith(core):
            body = body[len(core):].strip()
        while body.endswith(core):
            body = body[: -len(core)].strip()
        steps = [s.strip() for s in body.split(separator)]
        if core != separator and any(core in s for s in steps):
            raise DataFileError(f"{where}: the path {text!r:.60} holds {core!r} without the spaces of the separator "
                                f"{separator!r}; pass --label_path_separator {core!r} (names are stripped)")
    _check_names(steps, where)
    return tuple(steps)


def _cell_refs(cell: object, fmt: str, spec: LabelColumns, where: str) -> list[Ref]:
    if cell is None:
        return []
    if isinstance(cell, str) and cell.strip().startswith("["):  # a CSV cell holding a list
        try:
            cell = list_cell(cell)
        except ValueError as err:
            raise DataFileError(f"{where}: the label cell {cell!r:.60} is not a list ({err})") from None
    if isinstance(cell, str):
        items: list = [x.strip() for x in cell.split(spec.label_separator) if x.strip()]
    elif isinstance(cell, list):
        items = cell
    else:
        raise DataFileError(f"{where}: labels must be a list or a string, got {type(cell).__name__} {cell!r:.40}")
    if fmt == "names":
        return list(_check_names(items, where))
    if fmt == "path":
        if isinstance(cell, str):
            raise DataFileError(f"{where}: format 'path' needs a list of names, got the string {cell!r:.40}")
        return [tuple(_check_names(items, where))] if items else []
    refs: list[Ref] = []
    for item in items:
        if isinstance(item, list):
            refs.append(tuple(_check_names(item, where)))
        elif isinstance(item, str):
            refs.append(_split_path(item, spec.path_separator, where))
        else:
            raise DataFileError(f"{where}: a label path must be a string or a list of names, got {item!r:.40}")
    return refs


def _level_refs(ds: datasets.Dataset, spec: LabelColumns, name: str) -> list[list[Ref]]:
    missing = [c for c in spec.level_columns if c not in ds.column_names]
    if missing:
        raise ValueError(f"{name}: no level column(s) {missing}; columns are {ds.column_names}")
    columns = []
    for c in spec.level_columns:
        names = class_names(ds.features[c])
        cells = ds[c]
        columns.append([_names_of_ids(x, names) for x in cells] if names is not None else list(cells))
    out: list[list[Ref]] = []
    for i, row in enumerate(zip(*columns, strict=True)):
        path: list[str] = []
        ended_at = None  # the first empty level column
        for column, cell in zip(spec.level_columns, row, strict=True):
            if cell is None or (isinstance(cell, str) and not cell.strip()):
                ended_at = ended_at or column
            elif ended_at:
                raise DataFileError(f"{name}, row {i + 1}: level column {column!r} holds {cell!r:.40} below the "
                                    f"empty {ended_at!r} (a null ends a path)")
            elif not isinstance(cell, str):
                raise DataFileError(f"{name}, row {i + 1}: level column {column!r} must hold a name, got "
                                    f"{cell!r:.40}")
            else:
                path.append(cell.strip())
        out.append([tuple(path)] if path else [])
    return out


def infer_taxonomy(refs: Sequence[list[Ref]]) -> Taxonomy:
    """The taxonomy of the paths in ``refs`` (:meth:`Taxonomy.from_paths`), logged with its size."""
    taxonomy = Taxonomy.from_paths(ref for row in refs for ref in row)
    summary = taxonomy.summary()
    repeated = Counter(taxonomy.display_name(i) for i in range(taxonomy.num_labels))
    repeated_names = {k: v for k, v in repeated.items() if v > 1}
    logger.info("taxonomy inferred from the data: %d labels (%s per level), %d bare name(s) under several "
                "parents%s", summary["num_labels"], summary["labels_per_level"], len(repeated_names),
                f" (e.g. {', '.join(sorted(repeated_names)[:5])}: kept apart, named parent/name)"
                if repeated_names else "")
    return taxonomy


def resolve_row(row: Sequence[Ref], taxonomy: Taxonomy, unknown: Counter[str]) -> list[int]:
    """The label ids of one example's names and paths; unknown ones are counted in ``unknown``. A bare name of
    several labels (``food``) is resolved by the example's other labels when exactly one of its labels has its
    parent among them (an ancestor-closed list ``["pets", "dogs", "food"]``); else :class:`AmbiguousLabelError`."""
    ids: set[int] = set()
    pending: dict[str, tuple[int, ...]] = {}
    for ref in row:
        if isinstance(ref, tuple):
            try:
                ids.add(taxonomy.resolve_path(ref))
            except KeyError:
                unknown[" > ".join(ref)] += 1
            continue
        matches = taxonomy.candidates(ref)
        if len(matches) == 1:
            ids.add(matches[0])
        elif matches:
            pending[ref] = matches
        else:
            unknown[ref] += 1
    while pending:  # parents first: a resolved name may resolve the next level's
        progress = False
        for ref, matches in list(pending.items()):
            placed = [m for m in matches if set(taxonomy.parents[m]) & ids]
            if len(placed) == 1:
                ids.add(placed[0])
                del pending[ref]
                progress = True
        if not progress:
            ref, matches = next(iter(pending.items()))
            raise taxonomy.ambiguity_error(ref, matches)
    return sorted(ids)


def encode_split(texts: list[str], refs: list[list[Ref]], taxonomy: Taxonomy, unknown_labels: str = "error",
                 name: str = "data") -> datasets.Dataset:
    """``text`` / ``label_names`` (ancestor-closed, id order) / ``labels`` (multi-hot ``[num_labels]``) of a split.
    Unknown labels raise :class:`UnknownLabelsError` listing them (``unknown_labels="drop"``: dropped, logged);
    an ambiguous bare name raises :class:`AmbiguousLabelError` naming the row and the paths."""
    if unknown_labels not in ("error", "drop"):
        raise ValueError(f"unknown_labels must be 'error' or 'drop', got {unknown_labels!r}")
    unknown: Counter[str] = Counter()
    rows = []
    for i, row in enumerate(refs):
        try:
            ids = resolve_row(row, taxonomy, unknown)
        except AmbiguousLabelError as err:
            raise AmbiguousLabelError(f"{name}, row {i + 1}: {err}") from None
        rows.append(sorted(taxonomy.ancestor_closure(ids)))
    if unknown and unknown_labels == "error":
        listed = ", ".join(f"{k!r} ({v}x)" for k, v in unknown.most_common(20))
        more = f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
        raise UnknownLabelsError(f"{name}: {len(unknown)} label(s) not in the taxonomy: {listed}{more}; fix the data "
                                 "or pass unknown_labels='drop' (--unknown_labels drop)")
    if unknown:
        logger.warning("%s: dropped %d occurrence(s) of %d unknown label(s): %s", name, sum(unknown.values()),
                       len(unknown), sorted(unknown)[:20])
    return datasets.Dataset.from_dict(
        {"text": texts, "label_names": [[taxonomy.labels[j] for j in ids] for ids in rows],
         "labels": [multi_hot(ids, taxonomy.num_labels) for ids in rows]}, features=PREPARED_FEATURES)


def prepare_labelled_splits(splits: datasets.DatasetDict | datasets.Dataset, spec: LabelColumns,
                            taxonomy: Taxonomy | None = None, unknown_labels: str = "error",
                            ) -> tuple[datasets.DatasetDict, Taxonomy]:
    """Prepare every split of ``splits`` (a ``Dataset`` is the train split) and return them with the taxonomy:
    ``taxonomy`` when given, else inferred from the label paths of all splits (names alone cannot give one)."""
    if isinstance(splits, datasets.Dataset):
        splits = datasets.DatasetDict({"train": splits})
    if not splits:
        raise ValueError("no splits to prepare")
    first = "train" if "train" in splits else next(iter(splits))
    fmt = detect_format(splits[first], spec, taxonomy is not None, first)
    if fmt == "names" and taxonomy is None:
        raise ValueError("the labels are bare names and no taxonomy file was given: pass --taxonomy_file, or give "
                         "the labels as root-to-leaf paths (--label_path_separator ' > ', a list of names per "
                         "example with --label_format path) or --label_level_columns")
    texts = {k: texts_of(ds, spec, k) for k, ds in splits.items()}
    refs = {k: refs_of(ds, spec, fmt, k) for k, ds in splits.items()}
    if taxonomy is None:
        taxonomy = infer_taxonomy([row for k in splits for row in refs[k]])
    prepared = {k: encode_split(texts[k], refs[k], taxonomy, unknown_labels, k) for k in splits}
    return datasets.DatasetDict(prepared), taxonomy
