"""The one way framewatch reads an operator's YAML file (policies, routing, model manifests,
taxonomy): bounded parsing, and errors that say file:line.

A policy file is written by people and hot-reloaded into a running worker, so parsing it must
not cost more than the file is worth: aliases are refused (a 661-byte "billion laughs" expands
to billions of nodes in anything that walks it), nesting, size and integer length are capped,
and bytes that are not UTF-8 are refused with the line they sit on. Every problem is a
``YamlFileError`` (never a traceback), and pydantic validation errors map back to the line of
the offending key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from framewatch.errors import FramewatchError

MAX_BYTES = 1 << 20  # 1 MiB: the largest policy set we ship is ~5 KB
MAX_DEPTH = 32  # policies nest 5 deep, routing 6
MAX_INT_DIGITS = 30  # thresholds and counts; a 5,000-digit integer is an attack, not a setting

Path_ = tuple[str | int, ...]


class YamlFileError(FramewatchError):
    """A YAML file that cannot be used; the message names the file, the line and the reason."""

    def __init__(self, file: str, line: int | None, reason: str, hint: str = "") -> None:
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {reason}" + (f" ({hint})" if hint else ""))
        self.file, self.line, self.reason = file, line, reason


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses aliases, caps depth and integer length, and keeps lines."""

    def __init__(self, text: str, name: str, max_depth: int) -> None:
        super().__init__(text)
        self.name, self.max_depth, self.depth = name, max_depth, 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            ev = self.peek_event()
            raise YamlFileError(
                self.name, ev.start_mark.line + 1,
                f"YAML aliases (*{ev.anchor}) are not allowed here; write the value out",
            )  # fmt: skip
        self.depth += 1
        try:
            if self.depth > self.max_depth:
                mark = self.peek_event().start_mark
                raise YamlFileError(
                    self.name, mark.line + 1, f"nested deeper than {self.max_depth} levels"
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        digits = sum(c.isdigit() for c in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise YamlFileError(
                self.name, node.start_mark.line + 1,
                f"an integer of {digits} digits; at most {MAX_INT_DIGITS} are accepted",
            )  # fmt: skip
        return super().construct_yaml_int(node)  # type: ignore[no-any-return]


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


@dataclass
class YamlDoc:
    """A parsed file: its data, and the line of every key path (for error messages)."""

    name: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line(self, path: Path_) -> int | None:
        """The line of the deepest known prefix of ``path``."""
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return None

    def error(self, path: Path_, reason: str) -> YamlFileError:
        return YamlFileError(self.name, self.line(path), reason)

    def validation_error(self, exc: ValidationError, prefix: Path_ = ()) -> YamlFileError:
        """The first pydantic error, at the line of its key, with the field path in words."""
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in (*prefix, *loc)) or "the file"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r} (misspelt? see the documented keys)"
        return YamlFileError(self.name, self.line((*prefix, *loc)), f"{where}: {msg}")


def _index(node: yaml.Node) -> dict[Path_, int]:
    """Every key path -> 1-based line, walked without recursion (depth is capped anyway)."""
    out: dict[Path_, int] = {}
    stack: list[tuple[Path_, yaml.Node]] = [((), node)]
    while stack:
        path, n = stack.pop()
        out.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                kp = (*path, str(k.value))
                out[kp] = k.start_mark.line + 1
                stack.append((kp, v))
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(((*path, i), v) for i, v in enumerate(n.value))
    return out


def loads(
    name: str, raw: bytes | str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH
) -> YamlDoc:
    """Parse one YAML document with limits; YamlFileError(file, line, reason) on any problem."""
    if len(raw) > max_bytes:
        raise YamlFileError(name, None, f"{len(raw)} bytes; the limit is {max_bytes}")
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise YamlFileError(
                name, line, f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save it as UTF-8"
            ) from None
    else:
        text = raw
    loader = _Loader(text, name, max_depth)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except YamlFileError:
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise YamlFileError(
            name, line, f"bad YAML: {getattr(exc, 'problem', None) or exc}"
        ) from None
    except (ValueError, TypeError, RecursionError, OverflowError) as exc:
        raise YamlFileError(name, None, f"bad YAML: {type(exc).__name__}: {exc}") from None
    finally:
        loader.dispose()
    return YamlDoc(name, data, _index(node) if node is not None else {})


def load(path: Path, **limits: int) -> YamlDoc:
    """:func:`loads` of a file (named by its path in errors)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise YamlFileError(str(path), None, f"cannot read it: {exc.strerror or exc}") from None
    return loads(str(path), raw, **limits)
