"""One YAML loader for every operator file: the same hostile input, the same file:line error."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.routing import RoutingError
from alerts.routing import load as load_routing
from framewatch import taxonomy, yamlfile
from framewatch.errors import TaxonomyError
from scoring.errors import ModelError
from scoring.registry import load_file as load_manifest
from tests.streams.test_policy_hostile import HOSTILE

LOADERS = {
    "routing": (load_routing, RoutingError),
    "manifest": (load_manifest, ModelError),
    "taxonomy": (lambda p: taxonomy.load.__wrapped__(p), TaxonomyError),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_every_operator_file_refuses_hostile_yaml_with_its_line(
    kind: str, case: str, tmp_path: Path
) -> None:
    raw, line, words = HOSTILE[case]
    f = tmp_path / "x.yaml"
    f.write_bytes(raw)
    load, err = LOADERS[kind]
    with pytest.raises(err) as ei:
        load(f)
    assert f"{f}:{line}: " in str(ei.value) and words in str(ei.value)


def test_lines_follow_keys_and_list_items() -> None:
    doc = yamlfile.loads("t.yaml", "a:\n  b: 1\n  c:\n    - x\n    - y\n")
    assert doc.line(("a", "b")) == 2 and doc.line(("a", "c", 1)) == 5
    assert doc.line(("a", "nope")) == 1  # the nearest known parent


def test_a_file_over_the_size_limit_is_refused_before_parsing() -> None:
    with pytest.raises(yamlfile.YamlFileError, match="the limit is 10"):
        yamlfile.loads("t.yaml", b"a: 1\n" * 10, max_bytes=10)
