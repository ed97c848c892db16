"""Draw the house: which wing imports which, from the code itself (docs/architecture.md).

Reads every module of the package folders with ``ast`` (imports inside functions included),
folds them into wings (the core ``framewatch``, the four stages, ``console`` when present and
``devkit``), and writes ``docs/img/house.dot`` and, when Graphviz's ``dot`` is installed,
``docs/img/house.png``. Edge labels count module-to-module imports. Exit 1, naming the offending
imports, if the rules break: the core imports no wing, stages import only the core, devkit
imports only the core (no circle anywhere).

Usage: ``python tools/house.py [--check]`` (``--check``: verify only, write nothing)
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = "framewatch"
STAGES = ("ingest", "scoring", "streams", "alerts", "console")
WINGS = (CORE, *STAGES, "devkit")
ROLE = {
    CORE: "core: records, settings, clients, metrics,\\nimages, YAML, services, supervisor",
    "ingest": "ingest: sources -> frames",
    "scoring": "scoring: frames -> scores",
    "streams": "streams: scores -> decisions,\\nenforcement, alerts",
    "alerts": "alerts: alerts -> sinks",
    "console": "console: reviewers' UI",
    "devkit": "devkit: demo, fault suite,\\ntest plugin, test data",
}


def imports() -> Counter[tuple[str, str]]:
    """(from wing, to wing) -> number of module imports."""
    edges: Counter[tuple[str, str]] = Counter()
    for wing in WINGS:
        for path in sorted((ROOT / wing).rglob("*.py")) if (ROOT / wing).is_dir() else []:
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom) and node.level == 0
                    else []
                )
                for name in names:
                    target = name.split(".")[0]
                    if target in WINGS and target != wing:
                        edges[(wing, target)] += 1
    return edges


def broken(edges: Counter[tuple[str, str]]) -> list[str]:
    """The imports the house rules forbid."""
    out = []
    for (src, dst), n in sorted(edges.items()):
        if dst != CORE:
            out.append(f"{src} imports {dst} ({n} imports): only the core may be imported")
    return out


def dot(edges: Counter[tuple[str, str]]) -> str:
    present = [w for w in WINGS if (ROOT / w).is_dir()]
    lines = [
        "digraph house {",
        '  rankdir=TB; node [shape=box, style="rounded,filled", fontname="Helvetica"];',
        f'  {CORE} [label="{ROLE[CORE]}", fillcolor="#ffe9a8", width=4];',
    ]
    for w in present:
        if w != CORE:
            colour = "#d6eaff" if w in STAGES else "#e2f4d9"
            lines.append(f'  {w} [label="{ROLE[w]}", fillcolor="{colour}"];')
    lines.append("  { rank=same; " + "; ".join(w for w in present if w != CORE) + "; }")
    for (src, dst), n in sorted(edges.items()):
        lines.append(f'  {src} -> {dst} [label="{n}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> int:
    edges = imports()
    bad = broken(edges)
    for line in bad:
        print(f"house rule broken: {line}", file=sys.stderr)
    if "--check" not in sys.argv:
        out = ROOT / "docs" / "img"
        out.mkdir(parents=True, exist_ok=True)
        (out / "house.dot").write_text(dot(edges))
        if shutil.which("dot"):
            subprocess.run(["dot", "-Tpng", "-Gdpi=110", "-o", str(out / "house.png"),
                            str(out / "house.dot")], check=True)  # fmt: skip
            print(f"wrote {out / 'house.dot'} and {out / 'house.png'}")
        else:
            print(f"wrote {out / 'house.dot'} (apt-get install graphviz to render the PNG)")
    for (src, dst), n in sorted(edges.items()):
        print(f"{src:>8} -> {dst:<10} {n:>4} imports")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
