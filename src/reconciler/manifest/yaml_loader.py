"""Reading one YAML file into plain values, keeping where each value was written.

PyYAML's constructors drop positions and silently keep the last of two equal keys, so we compose
the node graph with the C parser (fast, keeps marks) and construct values ourselves. That walk is
also where hostile input is refused: oversized files, non-UTF-8 bytes, alias bombs and deep nesting.
"""
from __future__ import annotations

import math
import os
import re
import stat
import sys
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import Diagnostic
from ..model import Location

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - libyaml missing: slower, same results
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 64
# nodes a file may produce through aliases beyond the ones it writes out; generous for `<<: *defaults`
# style reuse, far below what a "billion laughs" document expands to
ALIAS_BUDGET = 100_000

Path = tuple[Any, ...]

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_constructor = yaml.constructor.SafeConstructor()
_SCALARS = {
    "tag:yaml.org,2002:null": lambda n: None,
    "tag:yaml.org,2002:bool": _constructor.construct_yaml_bool,
    "tag:yaml.org,2002:int": _constructor.construct_yaml_int,
    "tag:yaml.org,2002:float": _constructor.construct_yaml_float,
    # dates stay text: the manifest language has no date type and JSON Schema sees strings
    "tag:yaml.org,2002:timestamp": lambda n: n.value,
    _STR: lambda n: n.value,
}


@dataclass(slots=True)
class Document:
    """One file's values, with the position of every value and every mapping key.

    A file read by the lean path (:func:`_lean`) knows only the positions of its top two levels
    (providers, connectors and their names); the first question about a deeper position reads and
    composes the file once more with every mark (``text_hash`` proves it is the same text). Only
    files with a mistake in them are ever asked, so a valid tree of 100,000 connectors never pays
    for marks, nor keeps its text.
    """

    file: str
    data: Any
    marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    text_hash: int | None = None  # set while only the shallow marks are known

    def location(self, path: Path, *, key: bool = False) -> Location:
        """Where PATH was written (its key with ``key=True``); the nearest written ancestor otherwise."""
        path = tuple(path)
        if self.text_hash is not None and (len(path) > _LEAN_MARK_DEPTH
                                           or path not in (self.key_marks if key else self.marks)):
            self._all_marks()
        while True:
            mark = (self.key_marks.get(path) if key else None) or self.marks.get(path)
            if mark is not None or not path:
                break
            path = path[:-1]
        line, col = mark or (1, 1)
        return Location(self.file, line, col)

    def _all_marks(self) -> None:
        expected, self.text_hash = self.text_hash, None
        try:
            with open(self.file, "rb") as fh:
                text = fh.read(MAX_BYTES + 1).decode("utf-8-sig")
            if hash(text) != expected:
                return  # edited since it was read: the shallow positions are all that is known
            builder = _Builder(self.file)
            builder.build(yaml.compose(text, Loader=_Loader), (), 0)
        except (OSError, UnicodeDecodeError, yaml.YAMLError, _Stop, RecursionError):
            return
        self.marks, self.key_marks = builder.doc.marks, builder.doc.key_marks


class _Stop(Exception):
    """Abandon the walk: the document is hostile or broken beyond useful further diagnostics."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic


class _Builder:
    def __init__(self, file: str) -> None:
        self.doc = Document(file, None)
        self.diagnostics: list[Diagnostic] = []
        self.seen: set[int] = set()
        self.alias_nodes = 0

    def loc(self, node: yaml.Node) -> Location:
        return Location(self.doc.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: yaml.Node, path: Path, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise _Stop(Diagnostic(f"nesting deeper than {MAX_DEPTH} levels; manifests are shallow, flatten this",
                                   self.loc(node)))
        if id(node) in self.seen:
            # the same node object again: reached through an alias, and expanded once more
            self.alias_nodes += 1
            if self.alias_nodes > ALIAS_BUDGET:
                # reported at the top-level entry being expanded: the alias sites themselves are gone
                raise _Stop(Diagnostic(
                    f"YAML aliases expand to more than {ALIAS_BUDGET} nodes; refusing (write the values out)",
                    self.doc.location(path[:1], key=True)))
        else:
            self.seen.add(id(node))
        self.doc.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.ScalarNode):
            make = _SCALARS.get(node.tag)
            if make is None:
                self.diagnostics.append(Diagnostic(f"unsupported YAML tag {node.tag!r}; write a plain value",
                                                   self.loc(node)))
                return node.value
            try:
                value = make(node)
            except (ValueError, yaml.YAMLError):
                return node.value
            if isinstance(value, float) and not math.isfinite(value):
                # JSON has no NaN or Infinity; a platform would refuse it (or store garbage) at apply
                self.diagnostics.append(Diagnostic(
                    f"{node.value!r} is {'NaN' if math.isnan(value) else 'infinite'}, which no field accepts; "
                    "write a finite number (or quote it to mean text)", self.loc(node)))
            return value
        if node.tag not in (_MAP, _SEQ):
            # implicit resolution only ever gives !!map and !!seq: anything else was written (!!set,
            # !!omap, !!python/..., !Custom), and the manifest language has no tags
            self.diagnostics.append(Diagnostic(f"unsupported YAML tag {node.tag!r} on a "
                                               f"{'mapping' if isinstance(node, yaml.MappingNode) else 'list'}; "
                                               "remove the tag", self.loc(node)))
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            return self.build_mapping(node, path, depth)
        raise _Stop(Diagnostic("unexpected YAML node", self.loc(node)))  # pragma: no cover

    def build_mapping(self, node: yaml.MappingNode, path: Path, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merged: list[yaml.MappingNode] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for src in sources:
                    if not isinstance(src, yaml.MappingNode):
                        self.diagnostics.append(Diagnostic("`<<` merges only mappings", self.loc(src)))
                    else:
                        merged.append(src)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.diagnostics.append(Diagnostic("a mapping key must be a plain string", self.loc(key_node)))
                continue
            if key_node.tag not in _SCALARS:  # plain keys resolve to str/int/bool/...; others were written
                self.diagnostics.append(Diagnostic(f"unsupported YAML tag {key_node.tag!r} on a key; write a plain "
                                                   "key", self.loc(key_node)))
                continue
            key = key_node.value  # keys are names: keep the text as written (`1:` is the name "1")
            kpath = path + (key,)
            if key in out:
                first = self.doc.key_marks[kpath]
                self.diagnostics.append(Diagnostic(
                    f"duplicate key {key!r} (first defined at {self.doc.file}:{first[0]}:{first[1]}); "
                    "YAML would silently keep only the last one: remove or rename one", self.loc(key_node)))
                continue
            self.doc.key_marks[kpath] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = self.build(value_node, kpath, depth + 1)
        for src in merged:  # explicit keys win over merged ones, as YAML's merge key specifies
            for key_node, value_node in src.value:
                key = key_node.value
                if isinstance(key_node, yaml.ScalarNode) and key not in out:
                    kpath = path + (key,)
                    self.doc.key_marks[kpath] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                    out[key] = self.build(value_node, kpath, depth + 1)
        return out


# -- the lean path: plain documents at the speed of libyaml -------------------------------------------
_LEAN_MARK_DEPTH = 2  # positions kept eagerly: top-level keys and the names under them
# text that may need what only the full builder does: anchors and aliases, tags, merge keys
_LEAN_REFUSES = ("&", "!", "<<")
_BOOL = _SCALARS["tag:yaml.org,2002:bool"]
_INT = _SCALARS["tag:yaml.org,2002:int"]
_FLOAT = _SCALARS["tag:yaml.org,2002:float"]
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


_intern = sys.intern
_INTERN_UP_TO = 24  # short values (provider names, sources, targets, branches) repeat across connectors


class _NotLean(Exception):
    """The document needs the full builder (to report something, or to expand what it writes)."""


def _lean(node: yaml.Node, path: Path | None, depth: int, doc: Document) -> Any:
    """The values of a composed document, as :class:`_Builder` makes them, for the documents that
    give it nothing to report; anything else raises :class:`_NotLean`. Positions are recorded only
    down to ``_LEAN_MARK_DEPTH`` (``path`` is None below it)."""
    if depth > MAX_DEPTH:
        raise _NotLean
    if path is not None:
        doc.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    cls = node.__class__
    if cls is yaml.ScalarNode:
        tag = node.tag
        if tag == _STR or tag == _TIMESTAMP:
            value = node.value
            return _intern(value) if len(value) <= _INTERN_UP_TO else value
        if tag == "tag:yaml.org,2002:null":
            return None
        try:
            if tag == "tag:yaml.org,2002:bool":
                return _BOOL(node)
            if tag == "tag:yaml.org,2002:int":
                return _INT(node)
            if tag == "tag:yaml.org,2002:float":
                value = _FLOAT(node)
                if not math.isfinite(value):
                    raise _NotLean  # the full builder refuses NaN and infinities, with their place
                return value
        except (ValueError, yaml.YAMLError):
            raise _NotLean from None
        raise _NotLean
    if cls is yaml.SequenceNode:
        return [_lean(item, None, depth + 1, doc) for item in node.value]
    if cls is not yaml.MappingNode:
        raise _NotLean
    out: dict[str, Any] = {}
    deeper = path is not None and len(path) < _LEAN_MARK_DEPTH
    for key_node, value_node in node.value:
        if key_node.__class__ is not yaml.ScalarNode or key_node.tag == _MERGE:
            raise _NotLean
        key = _intern(key_node.value)  # every connector repeats the same dozen keys: one string each
        if key in out:
            raise _NotLean  # a duplicate key: reported by the full builder, with both places
        if deeper:
            kpath = path + (key,)  # type: ignore[operator]
            doc.key_marks[kpath] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _lean(value_node, kpath, depth + 1, doc)
        else:
            out[key] = _lean(value_node, None, depth + 1, doc)
    return out


def _position(data: bytes, offset: int) -> tuple[int, int]:
    before = data[:offset]
    line = before.count(b"\n") + 1
    return line, offset - (before.rfind(b"\n") + 1) + 1


def _too_deep(text: str, *, always: bool = False) -> yaml.Mark | None:
    """Where nesting first goes deeper than MAX_DEPTH, checked on the event stream (iterative) before
    composing: libyaml's composer recurses in C and crashes the process (SIGSEGV) near 50k levels.
    Depth is bounded by the openers ('[', '{', '-', '?') plus indentation, so small texts skip this
    (``always``: fmt, whose ruamel reader recurses in Python, for seconds, at a few thousand levels)."""
    if not always and sum(text.count(c) for c in "[{-?") < _DEPTH_SCAN_FROM:
        return None
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > MAX_DEPTH + 1:
                    return event.start_mark
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return None  # composing reports it, with its position
    return None


_DEPTH_SCAN_FROM = 4096  # below this many openers (and within MAX_BYTES of indentation) libyaml is safe


# the lookbehind starts a match only where a key starts: without it a 20 kB line of word characters
# backtracked quadratically (3 s; a 1 MB line from a pull request would hold CI for hours)
_UNQUOTED_REF = re.compile(r"(?<![\w.-])([\w.-]+):\s*(\$\{[^}]*\})")


def _syntax_hint(text: str, line: int) -> str:
    """What to write instead, for the two mistakes the parser's words do not explain."""
    lines = text.splitlines()
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    indent = here[: len(here) - len(here.lstrip())]
    if "\t" in indent:
        return "; YAML does not allow tabs for indentation: indent with spaces (2 per level)"
    found = _UNQUOTED_REF.search(here) if "${" in here else None
    if found and "{" in here[: found.start()]:
        return (f"; inside {{ }} a ${{...}} reference must be quoted: write {found.group(1)}: \"{found.group(2)}\" "
                "(or use a block mapping, one key per line)")
    return ""


def load_file(file: str) -> tuple[Document | None, list[Diagnostic]]:
    """Read FILE; on problems return no document (or a partial one) and every diagnostic found."""
    try:
        # O_NONBLOCK: a FIFO swapped in after collect's check opens at once instead of hanging
        with os.fdopen(os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                return None, [Diagnostic("not a regular file (a FIFO or device?); refusing to read it",
                                         Location(file, 1, 1))]
            size = st.st_size
            if size > MAX_BYTES:
                return None, [Diagnostic(f"file is {size / 1048576:.1f} MB; manifests are limited to "
                                         f"{MAX_BYTES // 1048576} MB (split it into several files)",
                                         Location(file, 1, 1))]
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        return None, [Diagnostic(f"cannot read: {exc.strerror or exc}", Location(file, 1, 1))]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _position(raw, exc.start)
        return None, [Diagnostic(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8",
                                 Location(file, line, col))]
    deep = _too_deep(text)
    if deep is not None:
        return None, [Diagnostic(f"nesting deeper than {MAX_DEPTH} levels; manifests are shallow, flatten this",
                                 Location(file, deep.line + 1, deep.column + 1))]
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "invalid YAML"
        if exc.context and exc.context not in problem:
            problem = f"{exc.context}: {problem}"
        if exc.context_mark and mark and exc.context_mark.line != mark.line:
            problem += f" (the construct started at line {exc.context_mark.line + 1})"
        problem += _syntax_hint(text, line)
        return None, [Diagnostic(f"YAML syntax error: {problem}", Location(file, line, col))]
    except yaml.YAMLError as exc:
        return None, [Diagnostic(f"YAML error: {exc}", Location(file, 1, 1))]
    if root is None:
        return None, [Diagnostic("empty manifest: write at least `version: 1`", Location(file, 1, 1))]
    if root.__class__ is yaml.MappingNode and not any(c in text for c in _LEAN_REFUSES):
        lean = Document(file, None, text_hash=hash(text))
        try:
            lean.data = _lean(root, (), 0, lean)
            return lean, []
        except _NotLean:
            pass
    builder = _Builder(file)
    try:
        builder.doc.data = builder.build(root, (), 0)
    except _Stop as stop:
        return None, builder.diagnostics + [stop.diagnostic]
    except RecursionError:
        return None, [Diagnostic("document nests too deeply", Location(file, 1, 1))]
    if not isinstance(builder.doc.data, dict):
        builder.diagnostics.append(Diagnostic("a manifest is a mapping with version, providers, connectors, ...",
                                              builder.loc(root)))
        return None, builder.diagnostics
    return builder.doc, builder.diagnostics
