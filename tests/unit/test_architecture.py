"""The house rules, checked on the source: who may import whom, and how big a module may grow.

Stages meet only in the core and on topics; the core knows no stage and no devkit; the devkit
wing (demo, fault suite, test plugin) uses the core only, and finds stages through the command
line and entry points like any user would.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STAGES = ("ingest", "scoring", "streams", "alerts", "console")
CORE = "framewatch"
DEVKIT = "devkit"
MAX_LINES = 500


def _packages() -> list[str]:
    return [p for p in (CORE, DEVKIT, *STAGES) if (REPO / p / "__init__.py").is_file()]


def _imports(path: Path) -> set[str]:
    """Top-level package names this module imports (absolute imports, anywhere in the file)."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _allowed(package: str) -> set[str]:
    if package == CORE:
        return {CORE}
    return {CORE, package}


@pytest.mark.parametrize("package", _packages())
def test_package_imports_only_what_the_house_allows(package: str) -> None:
    ours = {CORE, DEVKIT, *STAGES}
    wrong = []
    for path in sorted((REPO / package).rglob("*.py")):
        bad = (_imports(path) & ours) - _allowed(package)
        if bad:
            wrong.append(f"{path.relative_to(REPO)} imports {sorted(bad)}")
    assert not wrong, f"{package} may import only {sorted(_allowed(package))}:\n" + "\n".join(wrong)


def test_the_rule_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from streams.policy import load_dir\n")
    assert "streams" in _imports(module) - _allowed("scoring")


@pytest.mark.parametrize("package", _packages())
def test_no_module_grows_past_the_limit(package: str) -> None:
    big = [
        f"{p.relative_to(REPO)}: {n} lines"
        for p in sorted((REPO / package).rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    ]
    assert not big, f"split these modules (limit {MAX_LINES} lines):\n" + "\n".join(big)
