"""The category tree (L1.L2.L3) every score, rule and statement refers to.

Loaded from the built-in YAML, optionally extended from a file (new nodes, or a different
red-line flag / DSA category on an existing one). Nodes inherit red_line and dsa from their
parents, and keywords (the DSA category_specification) too unless they set their own dsa.
Paths, DSA categories and keywords are validated here (against the Transparency Database's
2025 lists in framewatch.dsa), so a typo or a retired category fails at start, not at the API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from framewatch import dsa as dsa_rules
from framewatch import yamlfile
from framewatch.errors import TaxonomyError

_SEGMENT = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_DEPTH = 3


@dataclass(frozen=True)
class Category:
    path: str
    red_line: bool
    dsa: str | None
    children: tuple[str, ...] = field(default=())
    keywords: tuple[str, ...] = field(default=())

    @property
    def level(self) -> int:
        return self.path.count(".") + 1


class Taxonomy:
    def __init__(self, categories: dict[str, Category]) -> None:
        self._cats = categories

    def __contains__(self, path: object) -> bool:
        return path in self._cats

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._cats.values())

    def __len__(self) -> int:
        return len(self._cats)

    def get(self, path: str) -> Category:
        try:
            return self._cats[path]
        except KeyError:
            raise TaxonomyError(self._unknown(path)) from None

    def validate(self, path: str) -> str:
        """Return the path if known, else raise TaxonomyError with the nearest known paths."""
        self.get(path)
        return path

    def is_red_line(self, path: str) -> bool:
        return self.get(path).red_line

    def ancestors(self, path: str) -> list[str]:
        """The path and its parents, most specific first: a.b.c -> [a.b.c, a.b, a]."""
        self.get(path)
        parts = path.split(".")
        return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]

    def dsa_category(self, path: str) -> str:
        return self.get(path).dsa or "STATEMENT_CATEGORY_OTHER_VIOLATION_TC"

    def dsa_keywords(self, path: str) -> list[str]:
        """The DSA category_specification keywords of a path (may be empty)."""
        return list(self.get(path).keywords)

    def _unknown(self, path: str) -> str:
        root = path.split(".")[0]
        near = [p for p in self._cats if p.split(".")[0] == root][:6]
        hint = (
            f"; known under {root!r}: {', '.join(near)}"
            if near
            else (f"; top-level categories: {', '.join(p for p in self._cats if '.' not in p)}")
        )
        return (
            f"unknown category {path!r}{hint} (extend the taxonomy with FRAMEWATCH_TAXONOMY_FILE)"
        )


def _walk(tree: Any, prefix: str, out: dict[str, dict[str, Any]], src: str) -> None:
    """Collect each node's explicitly set flags (later trees override earlier ones)."""
    if isinstance(tree, list):
        tree = {name: {} for name in tree}
    if not isinstance(tree, dict):
        raise TaxonomyError(f"{src}: children of {prefix or 'the root'} must be a mapping or list")
    for name, node in tree.items():
        if not isinstance(name, str) or not _SEGMENT.match(name):
            raise TaxonomyError(f"{src}: bad category name {name!r} (lowercase, digits, _)")
        path = f"{prefix}.{name}" if prefix else name
        if path.count(".") + 1 > MAX_DEPTH:
            raise TaxonomyError(f"{src}: {path} is deeper than L{MAX_DEPTH}")
        node = node or {}
        if not isinstance(node, dict):
            raise TaxonomyError(
                f"{src}: {path} must be a mapping (red_line, dsa, keywords, children)"
            )
        unknown = set(node) - {"red_line", "dsa", "keywords", "children"}
        if unknown:
            raise TaxonomyError(f"{src}: {path} has unknown keys {sorted(unknown)}")
        entry = out.setdefault(path, {})
        if "dsa" in node and "keywords" not in node:
            # a new DSA category makes the node's earlier keywords (another category's) moot
            entry.pop("keywords", None)
        for key in ("red_line", "dsa", "keywords"):
            if key in node:
                entry[key] = node[key]
        _check_dsa(entry, path, src)
        _walk(node.get("children", {}), path, out, src)


def _check_dsa(entry: dict[str, Any], path: str, src: str) -> None:
    """A DSA category or keyword the Transparency Database would refuse fails at load."""
    cat = entry.get("dsa")
    if cat is not None and cat not in dsa_rules.CATEGORIES:
        raise TaxonomyError(
            f"{src}: {path} has dsa {cat!r}, not a category of the DSA Transparency Database "
            f"(2025 schema): use one of {', '.join(dsa_rules.CATEGORIES)}"
        )
    kws = entry.get("keywords", [])
    if not isinstance(kws, list) or any(k not in dsa_rules.KEYWORDS for k in kws):
        raise TaxonomyError(
            f"{src}: {path} keywords must be a list of DSA KEYWORD_* values; unknown: "
            f"{[k for k in kws if k not in dsa_rules.KEYWORDS] if isinstance(kws, list) else kws}"
        )


def build(*trees: tuple[str, Any]) -> Taxonomy:
    """Merge (source, tree) pairs in order; later ones add nodes or override flags."""
    raw: dict[str, dict[str, Any]] = {}
    for src, tree in trees:
        _walk(tree, "", raw, src)
    cats: dict[str, Category] = {}
    for path in sorted(raw, key=lambda p: p.count(".")):  # parents before children
        parent = cats.get(path.rsplit(".", 1)[0]) if "." in path else None
        red = raw[path].get("red_line", parent.red_line if parent else False)
        dsa = raw[path].get("dsa", parent.dsa if parent else None)
        inherited = parent.keywords if parent and "dsa" not in raw[path] else ()
        keywords = tuple(raw[path].get("keywords", inherited))
        kids = tuple(p for p in raw if "." in p and p.rsplit(".", 1)[0] == path)
        allowed = set(dsa_rules.KEYWORDS_OF.get(dsa or "", ())) | set(
            dsa_rules.ANY_CATEGORY_KEYWORDS
        )
        if dsa and set(keywords) - allowed:
            raise TaxonomyError(
                f"{path}: keywords {sorted(set(keywords) - allowed)} do not belong to {dsa}; "
                f"its keywords: {', '.join(sorted(allowed))}"
            )
        cats[path] = Category(path, bool(red), dsa, kids, keywords)
    return Taxonomy({p: cats[p] for p in raw})


def _read(path: Path) -> Any:
    try:
        return yamlfile.load(path).data or {}
    except yamlfile.YamlFileError as exc:
        raise TaxonomyError(f"taxonomy file {exc}") from None


@cache
def load(extra_file: Path | None = None) -> Taxonomy:
    """The built-in taxonomy, extended by ``extra_file`` when given."""
    builtin = yamlfile.loads(
        "built-in taxonomy",
        resources.files("framewatch").joinpath("data/taxonomy.yaml").read_bytes(),
    ).data
    trees: list[tuple[str, Any]] = [("built-in taxonomy", builtin)]
    if extra_file is not None:
        trees.append((str(extra_file), _read(Path(extra_file))))
    return build(*trees)
