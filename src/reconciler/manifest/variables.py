"""``${VAR}`` references: syntax, and resolution against an environment.

Forms: ``${VAR}``, ``${VAR:-default}`` (unset or empty: the default), ``${VAR:?message}`` (unset or
empty: an error carrying the message), and ``$${`` for a literal ``${``. Resolution is one pass
over the text as written, so a value that came from the environment is never expanded again.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TOKEN = re.compile(r"\$\$\{|\$\{")


class VarSyntaxError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Ref:
    name: str
    op: str | None = None  # None | "-" (default) | "?" (required, with message)
    arg: str = ""


Part = str | Ref


@functools.lru_cache(maxsize=4096)  # manifests repeat the same few references (${GH_TOKEN}) thousands of times
def parse(text: str) -> tuple[Part, ...]:
    """Split TEXT into literal strings and references, or raise VarSyntaxError."""
    parts: list[Part] = []
    pos = 0
    literal = ""
    for m in _TOKEN.finditer(text):
        if m.start() < pos:
            continue
        literal += text[pos:m.start()]
        if m.group() == "$${":
            literal += "${"
            pos = m.end()
            continue
        close = text.find("}", m.end())
        if close < 0:
            raise VarSyntaxError("unterminated ${ reference: close it with }, or write $${ for a literal ${")
        body = text[m.end():close]
        if "${" in body:
            raise VarSyntaxError("nested ${...} references are not supported")
        name, op, arg = body, None, ""
        for sep in (":-", ":?"):
            if sep in body:
                name, arg = body.split(sep, 1)
                op = sep[1]
                break
        if not _NAME.match(name):
            if any(c in name for c in ":-?=+"):
                raise VarSyntaxError(f"unsupported reference ${{{body}}}: write ${{VAR}}, ${{VAR:-default}} or ${{VAR:?message}}")
            raise VarSyntaxError(
                f"invalid variable name {name!r} in ${{...}}: use letters, digits and _, not starting with a digit")
        if literal:
            parts.append(literal)
            literal = ""
        parts.append(Ref(name, op, arg))
        pos = close + 1
    literal += text[pos:]
    if literal:
        parts.append(literal)
    return tuple(parts)


def has_syntax(text: str) -> bool:
    return "${" in text


@dataclass(frozen=True, slots=True)
class Resolution:
    value: str
    unresolved: tuple[str, ...] = ()  # variables unset with no default (value is then partial)
    from_env: tuple[str, ...] = ()  # variables whose value came from the environment
    errors: tuple[str, ...] = ()


def resolve(parts: Sequence[Part], env: Mapping[str, str], *, secret: bool = False) -> Resolution:
    out: list[str] = []
    unresolved: list[str] = []
    from_env: list[str] = []
    errors: list[str] = []
    placeholder = getattr(env, "placeholder", None)
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value = env.get(part.name)
        if part.op in ("-", "?") and not value:
            value = None  # shell semantics: the colon forms treat empty like unset
        if value is not None:
            out.append(value)
            from_env.append(part.name)
        elif part.op == "-":
            out.append(part.arg)
        elif placeholder is not None:  # --sandbox: a stand-in for what the real environment lacks
            out.append(placeholder(part.name))
        else:
            unresolved.append(part.name)
            if part.op == "?":
                errors.append(f"environment variable {part.name} is not set: {part.arg}" if part.arg
                              else f"environment variable {part.name} is not set")
            elif secret:  # a default would put the secret in git: do not suggest one
                errors.append(f"environment variable {part.name} is not set (export it from the CI's secret store)")
            else:
                errors.append(f"environment variable {part.name} is not set (export it, or write "
                              f"${{{part.name}:-default}})")
    return Resolution("".join(out), tuple(unresolved), tuple(from_env), tuple(errors))
