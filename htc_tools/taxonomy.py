"""Label taxonomies: read, validate and query a label hierarchy (tree or DAG).

Three on-disk formats are read (:func:`load_taxonomy` picks by content, or pass ``fmt``):

* ``json``: ``{"Root": [top-level labels], parent: [children], ...}``.
* ``hiagm``: the HiAGM line format, ``parent<TAB>child<TAB>child...`` with a first line whose head is
  ``Root`` (any case). Lines without a tab are split on runs of spaces (the DBpedia file).
* ``pairs``: ``parent<TAB>child`` lines (BGC's ``hierarchy.txt``); a line holding one label declares a
  top-level label; a label that is never a child is top level (logged, with a warning for a name one edit away
  from another label: a misspelled parent). A tab-less line that looks like a space-separated pair is rejected.

Files are read as UTF-8 (a leading byte-order mark is ignored).

Label ids follow (level, first appearance in the file), so each level is a contiguous id range.

A taxonomy can also be inferred from root-to-leaf paths (:meth:`Taxonomy.from_paths`, used when a dataset
carries paths or level columns and no taxonomy file). There a node's identity is its path: ``cats > food`` and
``dogs > food`` are two labels. Their names (``id2label``) stay unique and readable: a name used by one node is
the label's name as it is (``food``); a name used by several nodes is qualified by its parent's name,
``dogs/food`` (:data:`QUALIFIER`), recursively when the parent's name is qualified too. :meth:`Taxonomy.display_name`
gives back the bare name (``food``) and :meth:`Taxonomy.path_names` the root-to-label path of display names.

Levels are 1-based. A label with several parents (a DAG) keeps every edge; its level is
``1 + max(level of its parents)``: the longest path from the root, so a label always sits strictly
below each of its parents (what level-wise decoders and per-level losses need).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

logger = logging.getLogger(__name__)

ROOT_NAMES = ("root",)
QUALIFIER = "/"  # joins a parent's name and a child's in the name of a label whose bare name is ambiguous


class TaxonomyError(ValueError):
    """A taxonomy file or mapping is invalid; the message names the label and the line."""


class AmbiguousLabelError(ValueError):
    """A bare label name that names several labels (the same name under several parents); the message lists
    their paths."""


@dataclass(frozen=True)
class _Edge:
    parent: str  # "" for the root
    child: str
    line: int  # 1-based line of the definition (0 when the source has no lines)


@dataclass(frozen=True)
class Taxonomy:
    """An immutable label hierarchy.

    Attributes:
        labels: label names in id order (level first, then first appearance).
        parents: per label id, the sorted ids of its parents (empty for top-level labels).
    """

    labels: tuple[str, ...]
    parents: tuple[tuple[int, ...], ...]
    _label2id: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_label2id", {name: i for i, name in enumerate(self.labels)})

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_edges(cls, edges: Iterable[tuple[str | None, str]]) -> Taxonomy:
        """Build from ``(parent, child)`` pairs in reading order; ``parent=None`` marks a top-level label."""
        return _build([_Edge(p or "", c, 0) for p, c in edges])

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Sequence[str]]) -> Taxonomy:
        """Build from ``{"Root": [...], parent: [children]}`` (the JSON format, already parsed)."""
        edges = []
        for parent, children in mapping.items():
            head = "" if parent.lower() in ROOT_NAMES else parent
            edges.extend(_Edge(head, child, 0) for child in children)
        return _build(edges)

    @classmethod
    def from_parents(cls, labels: Sequence[str], parents: Sequence[Sequence[int]]) -> Taxonomy:
        """Build from label names and per-label parent ids (the form stored in model configs)."""
        edges = [
            _Edge(labels[p] if p >= 0 else "", labels[i], 0)
            for i, ps in enumerate(parents)
            for p in (ps or [-1])
        ]
        return _build(edges)

    @classmethod
    def from_paths(cls, paths: Iterable[Sequence[str]]) -> Taxonomy:
        """Infer a tree from root-to-label paths (``[["pets", "dogs", "food"], ["pets", "cats", "food"]]``): every
        prefix of a path is a label, identified by its path. A name used by several nodes is qualified by its
        parent's name (``dogs/food``, ``cats/food``); ids follow (level, first appearance)."""
        nodes: dict[tuple[str, ...], None] = {}  # ordered set, first appearance
        for path in paths:
            path = tuple(path)
            for k, name in enumerate(path):
                if not isinstance(name, str) or not name.strip():
                    raise TaxonomyError(f"path {list(path)}: level {k + 1} is an empty or non-string name {name!r}")
                nodes.setdefault(path[: k + 1])
        if not nodes:
            raise TaxonomyError("no label paths to infer a taxonomy from")
        uses: dict[str, int] = {}
        for node in nodes:
            uses[node[-1]] = uses.get(node[-1], 0) + 1
        names: dict[tuple[str, ...], str] = {}
        for node in sorted(nodes, key=len):  # parents first
            ambiguous = uses[node[-1]] > 1 and len(node) > 1
            names[node] = f"{names[node[:-1]]}{QUALIFIER}{node[-1]}" if ambiguous else node[-1]
        owner: dict[str, tuple[str, ...]] = {}
        for node, name in names.items():
            if name in owner:
                raise TaxonomyError(f"paths {' > '.join(owner[name])!r} and {' > '.join(node)!r} both get the label "
                                    f"name {name!r} (a name holding {QUALIFIER!r}?); rename one of them")
            owner[name] = node
        return cls.from_edges((names[node[:-1]] if len(node) > 1 else None, names[node]) for node in nodes)

    # ---------------------------------------------------------------- queries
    @property
    def num_labels(self) -> int:
        return len(self.labels)

    def id(self, label: str) -> int:
        """The id of ``label``; ``KeyError`` naming it if unknown."""
        try:
            return self._label2id[label]
        except KeyError:
            raise KeyError(f"label {label!r} is not in the taxonomy") from None

    def __contains__(self, label: object) -> bool:
        return label in self._label2id

    @cached_property
    def label2id(self) -> dict[str, int]:
        return dict(self._label2id)

    @cached_property
    def levels(self) -> tuple[int, ...]:
        """1-based level per label id (longest path from the root)."""
        levels: list[int] = []
        for ps in self.parents:  # parents always have smaller ids (id order is level-major)
            levels.append(1 + max((levels[p] for p in ps), default=0))
        return tuple(levels)

    @property
    def depth(self) -> int:
        """Number of levels."""
        return max(self.levels, default=0)

    @cached_property
    def children(self) -> tuple[tuple[int, ...], ...]:
        """Per label id, the sorted ids of its children."""
        kids: list[list[int]] = [[] for _ in self.labels]
        for child, ps in enumerate(self.parents):
            for p in ps:
                kids[p].append(child)
        return tuple(tuple(k) for k in kids)

    @cached_property
    def top_level(self) -> tuple[int, ...]:
        return tuple(i for i, ps in enumerate(self.parents) if not ps)

    @cached_property
    def leaves(self) -> tuple[int, ...]:
        return tuple(i for i, k in enumerate(self.children) if not k)

    @cached_property
    def ancestors(self) -> tuple[frozenset[int], ...]:
        """Per label id, every proper ancestor (all parents' ancestors, for a DAG)."""
        out: list[frozenset[int]] = []
        for ps in self.parents:
            acc: set[int] = set(ps)
            for p in ps:
                acc |= out[p]
            out.append(frozenset(acc))
        return tuple(out)

    @cached_property
    def labels_per_level(self) -> tuple[tuple[int, ...], ...]:
        """``labels_per_level[k]`` = the ids at level ``k + 1`` (contiguous, ascending)."""
        return tuple(
            tuple(i for i, lv in enumerate(self.levels) if lv == level) for level in range(1, self.depth + 1)
        )

    @cached_property
    def sibling_groups(self) -> tuple[tuple[int, ...], ...]:
        """The children of the root, then of each label that has children, in id order."""
        groups = [self.top_level] if self.top_level else []
        groups.extend(k for k in self.children if k)
        return tuple(groups)

    def ancestor_closure(self, ids: Iterable[int]) -> set[int]:
        """``ids`` plus all their ancestors."""
        closed: set[int] = set()
        for i in ids:
            closed.add(i)
            closed |= self.ancestors[i]
        return closed

    def paths(self, label_id: int) -> list[list[int]]:
        """Every root-to-label path (several for a multi-parent label), each a list of ids."""
        if not self.parents[label_id]:
            return [[label_id]]
        return [[*path, label_id] for p in self.parents[label_id] for path in self.paths(p)]

    def display_name(self, label_id: int) -> str:
        """The bare name of a label: ``food`` for ``dogs/food`` (its name without its parent's name and
        :data:`QUALIFIER` in front); the name itself otherwise."""
        name = self.labels[label_id]
        for p in self.parents[label_id]:
            prefix = self.labels[p] + QUALIFIER
            if name.startswith(prefix) and len(name) > len(prefix):
                return name[len(prefix):]
        return name

    def path_names(self, label_id: int) -> list[str]:
        """Display names along the first root-to-label path: ``["pets", "dogs", "food"]``."""
        return [self.display_name(i) for i in self.paths(label_id)[0]]

    @cached_property
    def _by_display_name(self) -> dict[str, tuple[int, ...]]:
        out: dict[str, list[int]] = {}
        for i in range(self.num_labels):
            out.setdefault(self.display_name(i), []).append(i)
        return {k: tuple(v) for k, v in out.items()}

    def candidates(self, name: str) -> tuple[int, ...]:
        """The ids ``name`` may mean: the label of that name and every label of that bare name (``food``: a
        top-level ``food`` and ``pets/food``)."""
        exact = (self._label2id[name],) if name in self._label2id else ()
        return tuple(sorted({*exact, *self._by_display_name.get(name, ())}))

    def ambiguity_error(self, name: str, matches: Sequence[int]) -> AmbiguousLabelError:
        paths = "; ".join(" > ".join(self.path_names(i)) for i in matches)
        return AmbiguousLabelError(f"label {name!r} is ambiguous: it names {len(matches)} labels ({paths}); give the "
                                   "label as a path (--label_path_separator, --label_level_columns), with its "
                                   "parent among the example's labels, or by its qualified name "
                                   f"({', '.join(repr(self.labels[i]) for i in matches)})")

    def resolve(self, name: str) -> int:
        """The id of a label given by its name (``dogs/food``) or, when that is unique, its bare name (``food``).

        Raises:
            AmbiguousLabelError: a bare name of several labels, listing their paths.
            KeyError: an unknown name.
        """
        matches = self.candidates(name)
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise self.ambiguity_error(name, matches)
        raise KeyError(f"label {name!r} is not in the taxonomy")

    def resolve_path(self, path: Sequence[str]) -> int:
        """The id of the label at the end of a root-to-label path of names (each a label's name or bare name);
        ``KeyError`` naming the path if it is not a path of the taxonomy."""
        candidates, current = self.top_level, None
        for step in path:
            found = [c for c in candidates if self.labels[c] == step] or \
                    [c for c in candidates if self.display_name(c) == step]
            if len(found) != 1:
                raise KeyError(f"path {' > '.join(path)!r} is not in the taxonomy")
            current = found[0]
            candidates = self.children[current]
        if current is None:
            raise KeyError("an empty label path")
        return current

    def to_dict(self) -> dict[str, list[str]]:
        """The JSON form ``{"Root": [...], parent: [children]}`` (round-trips through :meth:`from_dict`)."""
        out = {"Root": [self.labels[i] for i in self.top_level]}
        for i, kids in enumerate(self.children):
            if kids:
                out[self.labels[i]] = [self.labels[k] for k in kids]
        return out

    def summary(self) -> dict[str, object]:
        """Counts that describe the hierarchy (used by model cards and logs)."""
        return {
            "num_labels": self.num_labels,
            "depth": self.depth,
            "labels_per_level": [len(x) for x in self.labels_per_level],
            "num_leaves": len(self.leaves),
            "multi_parent_labels": [self.labels[i] for i, ps in enumerate(self.parents) if len(ps) > 1],
        }


# -------------------------------------------------------------------- validation + id order
def _build(edges: list[_Edge]) -> Taxonomy:
    """Validate edges (self-parents, duplicates, unknown parents, cycles) and assign ids."""
    if not edges:
        raise TaxonomyError("the taxonomy is empty: no labels were found")
    order: dict[str, int] = {}  # first appearance, as parent or child
    parents_of: dict[str, dict[str, int]] = {}  # child -> {parent: line}
    is_child: set[str] = set()
    for e in edges:
        where = f" (line {e.line})" if e.line else ""
        if not e.child or not e.child.strip():
            raise TaxonomyError(f"empty label name under {e.parent or 'Root'!r}{where}")
        if e.child.lower() in ROOT_NAMES:
            raise TaxonomyError(f"label {e.child!r}{where} uses the reserved root name")
        if e.parent == e.child:
            raise TaxonomyError(f"label {e.child!r} is its own parent{where}")
        for name in (e.parent, e.child):
            if name:
                order.setdefault(name, len(order))
        seen = parents_of.setdefault(e.child, {})
        if e.parent in seen:
            first = f" (first at line {seen[e.parent]})" if seen[e.parent] else ""
            raise TaxonomyError(
                f"label {e.child!r} is listed twice under {e.parent or 'Root'!r}{where}{first}"
            )
        seen[e.parent] = e.line
        is_child.add(e.child)
    # A parent that is never a child and never declared top level is an unknown parent, except in
    # formats where top-level labels are implicit (pairs): callers mark those with parent "".
    unknown = [
        (name, line)
        for child, ps in parents_of.items()
        for name, line in ps.items()
        if name and name not in parents_of
    ]
    if unknown:
        name, line = unknown[0]
        where = f" at line {line}" if line else ""
        raise TaxonomyError(f"unknown parent {name!r}{where}: it is never defined as a label")
    # A label listed under the root and under a real parent keeps only the real parent edges.
    for ps in parents_of.values():
        if "" in ps and len(ps) > 1:
            del ps[""]
    levels = _levels_or_cycle(parents_of)
    names = sorted(order, key=lambda n: (levels[n], order[n]))
    label2id = {n: i for i, n in enumerate(names)}
    parents = tuple(tuple(sorted(label2id[p] for p in parents_of[n] if p)) for n in names)
    return Taxonomy(labels=tuple(names), parents=parents)


def _levels_or_cycle(parents_of: dict[str, dict[str, int]]) -> dict[str, int]:
    """Longest-path levels; raises naming a label and line of a cycle if there is one."""
    levels: dict[str, int] = {}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    for start in parents_of:
        if state.get(start) == 2:
            continue
        stack: list[tuple[str, Iterable[str]]] = [(start, iter(parents_of[start]))]
        state[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next((p for p in it if p), None)
            if nxt is None:
                stack.pop()
                state[node] = 2
                levels[node] = 1 + max((levels[p] for p in parents_of[node] if p), default=0)
                continue
            if state.get(nxt) == 1:
                cycle = [n for n, _ in stack[[n for n, _ in stack].index(nxt) :]] + [nxt]
                line = parents_of[node][nxt]
                where = f" (line {line})" if line else ""
                raise TaxonomyError(
                    f"cycle through label {nxt!r}{where}: " + " -> ".join(reversed(cycle))
                )
            if state.get(nxt) != 2:
                state[nxt] = 1
                stack.append((nxt, iter(parents_of[nxt])))
    return levels


# -------------------------------------------------------------------- readers
def load_taxonomy(path: str | Path, fmt: str | None = None) -> Taxonomy:
    """Read a taxonomy file; ``fmt`` is ``"json"``, ``"hiagm"`` or ``"pairs"`` (default: detected).

    Raises:
        TaxonomyError: naming the label and line of the first problem found.
    """
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark would otherwise become part of the first name
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise TaxonomyError(f"{path}: not UTF-8 text (byte {data[err.start]:#04x} at line {line}); "
                            "save the file as UTF-8") from None
    if not text.strip():
        raise TaxonomyError(f"{path}: the taxonomy file is empty")
    fmt = fmt or _detect_format(text)
    try:
        if fmt == "json":
            return _read_json(text)
        if fmt == "hiagm":
            return _read_hiagm(text)
        if fmt == "pairs":
            return _read_pairs(text, str(path))
    except TaxonomyError as err:
        raise TaxonomyError(f"{path}: {err}") from None
    raise ValueError(f"unknown taxonomy format {fmt!r}; expected 'json', 'hiagm' or 'pairs'")


def _detect_format(text: str) -> str:
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return "json"
    first = _split_line(stripped.splitlines()[0])
    return "hiagm" if first and first[0].lower() in ROOT_NAMES else "pairs"


def _split_line(line: str) -> list[str]:
    """Tab-separated fields (names may hold spaces); a line without a tab splits on spaces."""
    line = line.rstrip("\r\n")
    parts = line.split("\t") if "\t" in line else line.split(" ")
    return [p.strip() for p in parts if p.strip()] if parts else []


def _read_json(text: str) -> Taxonomy:
    def no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
        out: dict[str, object] = {}
        for key, value in pairs:
            if key in out and out[key] != value:
                raise TaxonomyError(
                    f"label {key!r} is defined twice with different children (line {_json_key_line(text, key, 2)})"
                )
            out[key] = value
        return out

    try:
        mapping = json.loads(text, object_pairs_hook=no_duplicate_keys)
    except json.JSONDecodeError as err:
        raise TaxonomyError(f"malformed JSON at line {err.lineno}: {err.msg}") from None
    if not isinstance(mapping, dict) or not mapping:
        raise TaxonomyError("the taxonomy JSON must be a non-empty object {parent: [children]}")
    if not any(k.lower() in ROOT_NAMES for k in mapping):
        raise TaxonomyError('the taxonomy JSON has no "Root" entry listing the top-level labels')
    edges = []
    key_lines = _json_key_lines(text)  # one pass over the text (a search per key is quadratic at 100k labels)
    for parent, children in mapping.items():
        line = key_lines.get(parent, 0)
        if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
            raise TaxonomyError(f"label {parent!r} (line {line}): children must be a list of strings")
        head = "" if parent.lower() in ROOT_NAMES else parent
        edges.extend(_Edge(head, c, line) for c in children)
    return _build(edges)


_JSON_KEY = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:')


def _json_key_lines(text: str) -> dict[str, int]:
    """The line of each object key's first occurrence in a JSON text, in one pass."""
    lines: dict[str, int] = {}
    line, position = 1, 0
    for m in _JSON_KEY.finditer(text):
        line += text.count("\n", position, m.start())
        position = m.start()
        lines.setdefault(json.loads(f'"{m.group(1)}"'), line)
    return lines


def _json_key_line(text: str, key: str, occurrence: int) -> int:
    pattern = re.compile(re.escape(json.dumps(key)) + r"\s*:")
    matches = list(pattern.finditer(text))
    if not matches:
        return 0
    m = matches[min(occurrence, len(matches)) - 1]
    return text.count("\n", 0, m.start()) + 1


def _read_hiagm(text: str) -> Taxonomy:
    lines = text.splitlines()
    rows: list[tuple[int, list[str]]] = []
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        fields = _split_line(raw)
        if len(fields) < 2:
            raise TaxonomyError(f"malformed line {lineno}: {raw.strip()!r} has a parent but no children")
        rows.append((lineno, fields))
    heads: dict[str, tuple[int, list[str]]] = {}
    for lineno, fields in rows:
        head, children = fields[0], fields[1:]
        if head in heads:
            first_line, first_children = heads[head]
            if first_children != children:
                raise TaxonomyError(
                    f"label {head!r} is defined twice with different children (lines {first_line} and {lineno})"
                )
        heads[head] = (lineno, children)
    _check_glued_lines(rows, heads)
    edges = []
    for lineno, fields in rows:
        head = "" if fields[0].lower() in ROOT_NAMES else fields[0]
        if fields[0] in heads and heads[fields[0]][0] != lineno:
            continue  # an identical repeated definition
        edges.extend(_Edge(head, child, lineno) for child in fields[1:])
    return _build(edges)


def _check_glued_lines(rows: list[tuple[int, list[str]]], heads: dict[str, tuple[int, list[str]]]) -> None:
    """Reject a lost line break: ``... lastChildNextParent c1 c2 ...`` where ``c1 c2 ...`` are the
    children of ``NextParent`` defined on another line (DBpedia's line 11)."""
    for lineno, fields in rows:
        children = fields[1:]
        for pos, name in enumerate(children):
            for other, (other_line, other_children) in heads.items():
                if (
                    other_line != lineno
                    and name != other
                    and name.endswith(other)
                    and children[pos + 1 : pos + 1 + len(other_children)] == other_children
                ):
                    raise TaxonomyError(
                        f"malformed line {lineno}: label {name!r} looks like two names glued together "
                        f"({name[: -len(other)]!r} + {other!r}); the names after it repeat the children of "
                        f"{other!r} from line {other_line} (a lost line break?)"
                    )


def _read_pairs(text: str, source: str = "taxonomy") -> Taxonomy:
    edges = []
    children: set[str] = set()
    lone: list[tuple[int, str]] = []  # tab-less lines: (line, name)
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        fields = raw.rstrip("\r\n").split("\t")
        fields = [f.strip() for f in fields]
        if len(fields) == 1 or (len(fields) == 2 and not fields[1]):
            edges.append(_Edge("", fields[0], lineno))
            if len(fields) == 1:
                lone.append((lineno, fields[0]))
        elif len(fields) == 2 and fields[0]:
            edges.append(_Edge(fields[0], fields[1], lineno))
            children.add(fields[1])
        else:
            raise TaxonomyError(
                f"malformed line {lineno}: {raw.strip()!r}; expected 'parent<TAB>child' or a lone label"
            )
    _check_space_separated(lone, edges, has_tab="\t" in text)
    # Parents that never appear as a child are top level (declared or not).
    declared = {e.child for e in edges if not e.parent}
    inferred: list[_Edge] = []
    for e in list(edges):
        if e.parent and e.parent not in children and e.parent not in declared:
            declared.add(e.parent)
            inferred.append(_Edge("", e.parent, e.line))
    taxonomy = _build(edges + inferred)
    _log_inferred_top_level(inferred, taxonomy, source)
    return taxonomy


def _check_space_separated(lone: list[tuple[int, str]], edges: list[_Edge], has_tab: bool) -> None:
    """Reject a tab-less line that reads as ``parent child`` written with spaces: in a file without any tab,
    or when its first word(s) name a label of another line."""
    first_seen: dict[str, int] = {}
    for e in edges:
        for name in (e.parent, e.child):
            if name:
                first_seen.setdefault(name, e.line)
    hint = "write 'parent<TAB>child' (a top-level label whose name holds spaces: end its line with a tab)"
    for lineno, name in lone:
        words = name.split()
        if len(words) < 2:
            continue
        if not has_tab:
            raise TaxonomyError(f"line {lineno}: {name!r} has no tab, and no line of this pairs file has one "
                                f"(pairs separated by spaces?); {hint}")
        for k in range(1, len(words)):
            head = " ".join(words[:k])
            if first_seen.get(head, lineno) != lineno:
                raise TaxonomyError(f"line {lineno}: {name!r} has no tab but starts with the label {head!r} of "
                                    f"line {first_seen[head]} (a pair separated by spaces?); {hint}")


def _log_inferred_top_level(inferred: list[_Edge], taxonomy: Taxonomy, source: str) -> None:
    """Log the top-level labels the pairs format made from parents that are never a child, and warn for a
    name one edit away from another label (a misspelled parent silently becomes a new top-level label)."""
    if not inferred:
        return
    names = [e.child for e in inferred]
    shown = ", ".join(map(repr, names[:20])) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
    logger.info("%s: %d top-level label(s) inferred (parents that are never a child): %s", source, len(names), shown)
    reported: set[frozenset[str]] = set()
    suspects = []
    for e in reversed(inferred):  # of two close inferred names, the later one is reported
        close = [n for n in taxonomy.labels if _one_edit_apart(e.child, n) and frozenset((e.child, n)) not in reported]
        reported.update(frozenset((e.child, n)) for n in close)
        if close:
            suspects.append((e, " and ".join(map(repr, close))))
    for e, close in reversed(suspects):
        logger.warning("%s: top-level label %r (line %d) is one edit away from %s: a misspelled parent? "
                       "(it is a new top-level label)", source, e.child, e.line, close)


def _one_edit_apart(a: str, b: str) -> bool:
    """Whether ``b`` is ``a`` with one character inserted, deleted, replaced, or two adjacent ones swapped."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), len(a))
    if len(a) < len(b):
        return a[i:] == b[i + 1 :]
    return a[i + 1 :] == b[i + 1 :] or (a[i + 2 :] == b[i + 2 :] and a[i : i + 2] == b[i : i + 2][::-1])
