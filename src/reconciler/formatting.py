"""Canonical formatting of manifest files (``reconcile fmt``), comments kept.

The canonical form: 2-space indentation (sequence items indented under their key), keys in a
fixed order (top level, providers, connectors; other mappings as written), one blank line between
top-level sections and between connectors, double quotes rather than single (a string written
plain stays plain, one written quoted stays quoted, as Prettier does).

ruamel.yaml's round trip keeps comments, but attaches each comment to the *end of the value before
it*. Moving keys would then carry a comment away from the key it describes, so before reordering a
mapping every comment block is re-attached as a "before" comment of the key that follows it.

Formatting never changes meaning: the result is read back with the same YAML reader the loader
uses (PyYAML, YAML 1.1) and compared with the original; a difference is an error, not a write.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.compat import ordereddict
from ruamel.yaml.emitter import Emitter
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

from .errors import ReconcileError
from .manifest.yaml_loader import ALIAS_BUDGET, MAX_DEPTH, _too_deep

TOP_ORDER = ("version", "state", "providers", "connectors", "moved")
CONNECTOR_ORDER = ("provider", "source", "target", "description", "scope", "schedule", "syncs", "member",
                   "credentials", "sync_on_apply", "lifecycle")
PROVIDER_ORDER = ("type", "url", "api_key", "allow_insecure_http")
STATE_ORDER = ("backend", "path", "dsn")
MOVED_ORDER = ("from", "to")
INDENT = 2

_STR_TAG = "tag:yaml.org,2002:str"
_yaml11 = pyyaml.resolver.Resolver()


class FormatError(ReconcileError):
    """A file that cannot be formatted (not YAML, or formatting would change its meaning)."""


class _CanonicalEmitter(Emitter):
    """Double quotes rather than single; and quotes wherever PyYAML (YAML 1.1, what the loader
    reads with) would take a plain scalar for something other than a string (``yes``, ``on``)."""

    def choose_scalar_style(self) -> Any:
        style = super().choose_scalar_style()
        if style == "'":
            return '"'
        # keys are left as written: a plain key stays plain (its meaning cannot be re-typed in place)
        if style == "" and not self.simple_key_context and _is_str(self.event) and \
                _yaml11.resolve(pyyaml.ScalarNode, self.event.value, (True, False)) != _STR_TAG:
            return '"'
        return style


def _is_str(event: Any) -> bool:
    tag = getattr(event, "tag", None)
    return tag is None or str(tag) in (_STR_TAG, "!!str")


@dataclass(frozen=True, slots=True)
class Formatted:
    text: str
    changed: bool


def format_text(text: str, *, name: str = "<text>") -> Formatted:
    """The canonical form of one manifest file's text."""
    deep = _too_deep(text, always=True)  # the loader's depth limit, checked before ruamel recurses
    if deep is not None:
        raise FormatError(f"{name}:{deep.line + 1}:{deep.column + 1}: nesting deeper than {MAX_DEPTH} levels; "
                          "manifests are shallow, flatten this; file left unchanged")
    reader = _yaml()
    reader.preserve_quotes = True  # to tell a quoted "yes" (text) from a plain yes (a bool to PyYAML)
    try:
        docs = list(reader.load_all(text))
    except Exception as exc:  # ruamel raises many types; all mean "not YAML we can format"
        raise FormatError(f"{name}: not valid YAML ({exc})") from exc
    if not docs or all(d is None for d in docs):
        return Formatted(text, False)
    _refuse_alias_bombs(docs, name)
    _refuse_recursion(text, name)
    for doc in docs:
        _as_pyyaml_reads(doc)
        if isinstance(doc, CommentedMap):
            _canonical_document(doc)
    out = io.StringIO()
    writer = _yaml()
    if len(docs) == 1:
        writer.dump(docs[0], out)
    else:
        writer.explicit_start = True
        writer.dump_all(docs, out)
    result = out.getvalue()
    _check_same_meaning(text, result, name)
    return Formatted(result, result != text)


def _refuse_alias_bombs(docs: list[Any], name: str) -> None:
    """The loader's alias budget, here too: ``&a [*b, *b, ...]`` nested a few levels is a few
    lines that expand to billions of nodes, which the walks below (and the meaning check) visit
    one by one; ``fmt --check`` in a pre-commit hook would hang on a pull request's file."""
    seen: set[int] = set()
    expanded = 0
    stack: list[tuple[Any, bool]] = [(d, False) for d in docs]
    while stack:
        node, aliased = stack.pop()
        if not isinstance(node, (CommentedMap, CommentedSeq)):
            continue
        if id(node) in seen:
            aliased = True
        seen.add(id(node))
        children = list(node.values()) if isinstance(node, CommentedMap) else list(node)
        if aliased:
            expanded += 1 + len(children)
            if expanded > ALIAS_BUDGET:
                raise FormatError(f"{name}: YAML aliases expand to more than {ALIAS_BUDGET} nodes; "
                                  "refusing (write the values out); file left unchanged")
        stack.extend((c, aliased) for c in children)


def _refuse_recursion(text: str, name: str) -> None:
    """An alias inside its own anchor (``&loop [*loop]``): the loader reads an endless structure
    (validate refuses it as too deep), ruamel a finite one, so the meaning check below would blame
    fmt ("please report this") for a file no manifest can be."""
    done: set[int] = set()

    def walk(node: Any, path: set[int]) -> Any:
        if not isinstance(node, (pyyaml.MappingNode, pyyaml.SequenceNode)) or id(node) in done:
            return None
        if id(node) in path:
            return node
        path.add(id(node))
        children = [c for pair in node.value for c in pair] if isinstance(node, pyyaml.MappingNode) else node.value
        for child in children:
            found = walk(child, path)
            if found is not None:
                return found
        path.discard(id(node))
        done.add(id(node))
        return None

    try:
        roots = list(pyyaml.compose_all(text, Loader=pyyaml.SafeLoader))
    except pyyaml.YAMLError:
        return  # the meaning check reports it
    for root in roots:
        loop = walk(root, set())
        if loop is not None:
            mark = loop.start_mark
            raise FormatError(f"{name}:{mark.line + 1}:{mark.column + 1}: a YAML alias inside its own anchor makes "
                              "an endless structure; write the values out; file left unchanged")


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.Emitter = _CanonicalEmitter
    y.indent(mapping=INDENT, sequence=INDENT * 2, offset=INDENT)
    y.width = 4096  # never fold long strings
    y.preserve_quotes = False
    return y


def _as_pyyaml_reads(node: Any) -> None:
    """Single-quoted strings become double-quoted (quoted stays quoted, like Prettier); plain scalars
    ruamel (YAML 1.2) read as text but PyYAML (YAML 1.1, the loader) reads as something else, like
    ``on`` or ``yes``, take PyYAML's value, so the output means what the loader saw."""
    items = node.items() if isinstance(node, CommentedMap) else enumerate(node) \
        if isinstance(node, CommentedSeq) else ()
    for key, value in list(items):
        if isinstance(value, (CommentedMap, CommentedSeq)):
            _as_pyyaml_reads(value)
        elif isinstance(value, SingleQuotedScalarString):
            _set(node, key, DoubleQuotedScalarString(value))
        elif type(value) is str and _yaml11.resolve(pyyaml.ScalarNode, value, (True, False)) != _STR_TAG:
            _set(node, key, pyyaml.safe_load(value))


def _set(node: Any, key: Any, value: Any) -> None:
    # CommentedMap.__setitem__ would re-wrap a str in the old value's quoting style
    if isinstance(node, CommentedMap):
        ordereddict.__setitem__(node, key, value)
    else:
        list.__setitem__(node, key, value)


def _check_same_meaning(before: str, after: str, name: str) -> None:
    try:
        same = list(pyyaml.safe_load_all(before)) == list(pyyaml.safe_load_all(after))
    except pyyaml.YAMLError as exc:
        raise FormatError(f"{name}: formatting produced unreadable YAML ({exc}); file left unchanged") from exc
    if not same:
        raise FormatError(f"{name}: formatting would change the file's meaning; file left unchanged "
                          "(please report this with the file)")


# -- the canonical layout ---------------------------------------------------------------------

def _canonical_document(doc: CommentedMap) -> None:
    _reorder(doc, TOP_ORDER, column=0, blank_between=True, parent=None)
    for key, column_order in (("providers", PROVIDER_ORDER), ("connectors", CONNECTOR_ORDER)):
        section = doc.get(key)
        if not isinstance(section, CommentedMap):
            continue
        _reorder(section, (), column=INDENT, blank_between=key == "connectors", parent=(doc, key))
        for name, body in section.items():
            if isinstance(body, CommentedMap) and not body.fa.flow_style():
                _reorder(body, column_order, column=2 * INDENT, blank_between=False, parent=(section, name))
    state = doc.get("state")
    if isinstance(state, CommentedMap) and not state.fa.flow_style():
        _reorder(state, STATE_ORDER, column=INDENT, blank_between=False, parent=(doc, "state"))


def _reorder(m: CommentedMap, order: tuple[str, ...], *, column: int, blank_between: bool,
             parent: tuple[CommentedMap, Any] | None) -> None:
    """Put ``m``'s keys in ``order`` (unknown keys after, as written), each comment block staying
    before the key it was written above."""
    keys = list(m.keys())
    if not keys:
        return
    leading: dict[Any, list[str]] = {}
    for i, key in enumerate(keys):
        lines: list[str] = []
        if i == 0:
            lines += _take_first_comment(m, parent)
        else:
            lines += _take_tail(m, keys[i - 1], column)
        lines += _take_before(m, key)
        leading[key] = lines
    trailer = _take_tail(m, keys[-1], column) if parent is None else []
    rank = {k: i for i, k in enumerate(order)}
    ordered = sorted(keys, key=lambda k: (rank.get(k, len(order)), keys.index(k)))
    for key in ordered:
        m.move_to_end(key)
    for i, key in enumerate(ordered):
        lines = _tidy(leading[key])
        if blank_between and i > 0:
            lines = [""] + lines
        if lines:
            m.ca.items.setdefault(key, [None, None, None, None])[1] = [
                CommentToken(line + "\n" if line else "\n", CommentMark(column), None) for line in lines]
    if trailer:
        _append_tail(m, ordered[-1], trailer)


def _tidy(lines: list[str]) -> list[str]:
    """No blank line at either end of a comment block, and never two in a row."""
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return out


def _comment_lines(tokens: Any) -> list[str]:
    text = "".join(t.value for t in _tokens(tokens))
    return [line.strip() for line in text.split("\n")[:-1]] if text.endswith("\n") else \
        [line.strip() for line in text.split("\n")]


def _tokens(slot: Any) -> list[CommentToken]:
    if slot is None:
        return []
    if isinstance(slot, CommentToken):
        return [slot]
    return [t for t in slot if isinstance(t, CommentToken)]


def _take_before(m: CommentedMap, key: Any) -> list[str]:
    slot = m.ca.items.get(key)
    if not slot or not slot[1]:
        return []
    lines = _comment_lines(slot[1])
    slot[1] = None
    return lines


def _take_first_comment(m: CommentedMap, parent: tuple[CommentedMap, Any] | None) -> list[str]:
    """Comments between the parent key and the first key of ``m`` (ruamel keeps them on both)."""
    lines: list[str] = []
    if parent is not None and m.ca.comment and len(m.ca.comment) > 1 and m.ca.comment[1]:
        lines = _comment_lines(m.ca.comment[1])
        m.ca.comment[1] = None
        pslot = parent[0].ca.items.get(parent[1])
        if pslot and len(pslot) > 3:
            pslot[3] = None
    return lines


def _deepest(container: Any, key: Any) -> tuple[Any, Any]:
    """The container and key of the last scalar in ``container[key]``'s value (block style)."""
    value = container[key]
    if isinstance(value, CommentedMap) and value and not value.fa.flow_style():
        return _deepest(value, list(value.keys())[-1])
    if isinstance(value, CommentedSeq) and value and not value.fa.flow_style():
        return _deepest(value, len(value) - 1)
    return container, key


def _tail_slot(container: Any, key: Any) -> tuple[list[Any], int] | None:
    """The comment slot after the last line of ``container[key]``'s value."""
    inner, inner_key = _deepest(container, key)
    slot = inner.ca.items.get(inner_key)
    index = 0 if isinstance(inner, CommentedSeq) else 2
    return (slot, index) if slot is not None and slot[index] is not None else None


def _take_tail(m: CommentedMap, key: Any, column: int) -> list[str]:
    """Split off what follows ``key``'s last line: lines indented deeper than ``column`` stay (they
    belong inside the value); from the first blank or shallower line on, they go to the next key."""
    found = _tail_slot(m, key)
    if found is None:
        return []
    slot, index = found
    text = "".join(t.value for t in _tokens(slot[index]))
    first, _, rest = text.partition("\n")
    lines = rest.split("\n")[:-1] if rest.endswith("\n") else rest.split("\n") if rest else []
    keep = 0
    while keep < len(lines) and lines[keep].strip().startswith("#") and \
            len(lines[keep]) - len(lines[keep].lstrip()) > column:
        keep += 1
    kept = [first] + lines[:keep]
    moved = [line.strip() for line in lines[keep:]]
    if not first.strip() and keep == 0:
        slot[index] = None
    else:
        template = _tokens(slot[index])[0]
        slot[index] = CommentToken("\n".join(kept) + "\n", template.start_mark, None)
    return moved


def _append_tail(m: CommentedMap, key: Any, lines: list[str]) -> None:
    found = _tail_slot(m, key)
    extra = "".join(f"{line}\n" for line in lines)
    if found is None:
        inner, inner_key = _deepest(m, key)
        index = 0 if isinstance(inner, CommentedSeq) else 2
        inner.ca.items.setdefault(inner_key, [None, None, None, None])[index] = \
            CommentToken("\n" + extra, CommentMark(0), None)
        return
    slot, index = found
    template = _tokens(slot[index])[0]
    slot[index] = CommentToken("".join(t.value for t in _tokens(slot[index])) + extra, template.start_mark, None)
