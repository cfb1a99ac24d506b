"""What `gan <command> --help` prints, read from the schemas themselves.

Each key's one-line meaning is the comment written beside its dataclass field (or, when there
is none, the comment lines just above it), read from the source with `ast` and `tokenize`, so
the help cannot drift from the code. Unknown keys get "did you mean ...?" from the same lists.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import enum
import inspect
import io
import textwrap
import tokenize
import typing
from dataclasses import dataclass
from functools import cache

from gancli.errors import ConfigError


@dataclass(frozen=True)
class Key:
    name: str  # dotted, e.g. train.steps
    type: str  # as written in the source; enums list their values
    default: str  # as the user would type it
    doc: str  # one line


def _comments_by_line(source: str) -> dict[int, str]:
    comments = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    return comments


@cache
def field_comments(cls: type) -> dict[str, str]:
    """field name -> its comment, for the fields `cls` itself declares."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    comments = _comments_by_line(source)
    (node,) = ast.parse(source).body
    docs = {}
    for stmt in node.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        trailing = [comments[n] for n in range(stmt.lineno, stmt.end_lineno + 1) if n in comments]
        if trailing:
            docs[stmt.target.id] = " ".join(trailing)
            continue
        above, n = [], stmt.lineno - 1
        while n in comments and lines[n - 1].strip().startswith("#"):
            above.insert(0, comments[n])
            n -= 1
        if above:
            docs[stmt.target.id] = " ".join(above)
    return docs


def _docs(cls: type) -> dict[str, str]:
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        if dataclasses.is_dataclass(base):
            docs.update(field_comments(base))
    return docs


def _shown(value) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ",".join(_shown(v) for v in value) + "]"
    if value == "":
        return "''"
    return str(value)


def _type_name(hint, written: str) -> str:
    for arg in (hint, *typing.get_args(hint)):
        if isinstance(arg, type) and issubclass(arg, enum.Enum):
            choices = "|".join(str(m.value) for m in arg)
            return choices + (" | null" if type(None) in typing.get_args(hint) else "")
        for inner in typing.get_args(arg):  # list[Enum]
            if isinstance(inner, type) and issubclass(inner, enum.Enum):
                return "list of " + "|".join(str(m.value) for m in inner)
    return written


def schema_keys(cls: type, prefix: str = "", name_doc: str = "") -> list[Key]:
    """Every key of dataclass `cls` (nested dataclasses flattened), with type, default and
    the comment from the source (`name_doc` for a field `name` without one)."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that cannot be evaluated: show it as written
        hints = {}
    docs = _docs(cls)
    keys = []
    for f in dataclasses.fields(cls):
        name = f"{prefix}{f.name}"
        hint = hints.get(f.name)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            keys.extend(schema_keys(hint, name + "."))
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = "(required)"
        written = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        doc = docs.get(f.name) or (name_doc if f.name == "name" else "")
        keys.append(Key(name, _type_name(hint, written), _shown(default), doc))
    return keys


def suggest(word: str, choices: list[str]) -> str:
    """' did you mean X?' (or '') for an unknown key."""
    close = difflib.get_close_matches(word, choices, n=2, cutoff=0.6)
    if not close:  # a typo in the last part of a dotted key: compare within its block
        head = word.rpartition(".")[0]
        close = difflib.get_close_matches(word, [c for c in choices if c.startswith(head + ".")]
                                          or choices, n=2, cutoff=0.4)
    ratios = [difflib.SequenceMatcher(None, word, c).ratio() for c in close]
    close = [c for c, r in zip(close, ratios, strict=True) if r >= ratios[0] - 0.05]
    return f"; did you mean {' or '.join(close)}?" if close else ""


def check_known(keys: list[str], known: list[str], command: str) -> None:
    """One line naming the first unknown key and the nearest known ones."""
    for key in keys:
        if key not in known:
            raise ConfigError(f"unknown key '{key}' for gan {command}{suggest(key, known)} "
                              f"(gan {command} --help lists the keys)")


def key_table(keys: list[Key], width: int = 100) -> str:
    """Aligned 'key  type  default  meaning' lines."""
    name_w = min(max((len(k.name) for k in keys), default=0), 32)
    lines = []
    for k in keys:
        head = f"  {k.name:<{name_w}}  {k.type} = {k.default}"
        lines.append(head)
        for part in textwrap.wrap(k.doc or "(no description)", width - 6):
            lines.append(f"      {part}")
    return "\n".join(lines)
