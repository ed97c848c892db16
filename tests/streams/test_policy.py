"""Policy engine: specificity, validation with file+line, reload keeping the running policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from framewatch import taxonomy
from streams.policy import PolicyError, PolicyStore, load_dir, parse_file

TAX = taxonomy.load()


def test_default_policy_has_red_lines_and_ladder() -> None:
    p = load_dir(None, TAX)
    assert p.rule("child_safety.csam").red_line
    assert p.rule("terrorism.propaganda").red_line
    assert p.rule("known_bad.csam_bank").red_line
    assert not p.rule("violence.gore.blood").red_line
    assert [s.action for s in p.enforcement().ladder] == [
        "warn",
        "restrict",
        "suspend_stream",
        "suspend_account",
    ]
    assert p.version.startswith("p-")


def test_deeper_category_rule_wins_and_inherits_missing_fields() -> None:
    p = load_dir(None, TAX)
    r = p.rule("sexual.explicit.exposed_anus")
    assert (r.review, r.block, r.smoothing.k, r.smoothing.n) == (0.45, 0.8, 2, 4)
    assert r.source.endswith(":sexual.explicit")
    r2 = p.rule("sexual.nudity.full_nudity")
    assert (r2.review, r2.block) == (0.5, 0.85)
    assert (r2.smoothing.k, r2.smoothing.n) == (3, 5)  # from defaults


def test_tenant_and_channel_files_override_default(tmp_path: Path) -> None:
    (tmp_path / "kids.yaml").write_text(
        "scope: {channel: kids}\nrules:\n  suggestive: {review: 0.2, block: 0.5}\n"
    )
    (tmp_path / "acme-kids.yaml").write_text(
        "scope: {tenant: acme, channel: kids}\nrules:\n  suggestive: {block: 0.4}\n"
    )
    p = load_dir(tmp_path, TAX)
    assert p.rule("suggestive.swimwear").block == 0.99
    assert p.rule("suggestive.swimwear", channel="kids").block == 0.5
    r = p.rule("suggestive.swimwear", tenant="acme", channel="kids")
    assert (r.review, r.block) == (0.2, 0.4)
    assert p.rule("suggestive.swimwear", tenant="other", channel="kids").block == 0.5


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("rules:\n  sexual.nope: {review: 0.1}\n", 2, "unknown category 'sexual.nope'"),
        ("rules:\n  hate:\n    review: 0.7\n    block: 0.5\n", 2, "below review"),
        ("rules:\n  hate: {review: 0.5\n", None, "bad YAML"),
        ("rules:\n  hate:\n    smoothing: {k: 5, n: 2}\n", 3, "1 <= k <= n"),
        ("rules:\n  child_safety: {red_line: false}\n", 2, "cannot relax"),
        ("bogus: 1\n", 1, "unknown key"),
        ("rules:\n  hate: {review: 2}\n", 2, "between 0 and 1"),
    ],
)
def test_bad_files_are_refused_with_line_and_reason(
    text: str, line: int | None, needle: str
) -> None:
    with pytest.raises(PolicyError) as ei:
        parse_file("bad.yaml", text, TAX)
    assert needle in str(ei.value)
    assert "bad.yaml" in str(ei.value)
    if line is not None:
        assert ei.value.line == line


def test_bad_yaml_reports_a_line() -> None:
    with pytest.raises(PolicyError) as ei:
        parse_file("x.yaml", "rules:\n  hate: [\n", TAX)
    assert ei.value.line is not None


def test_reload_on_change_keeps_running_policy_on_error(tmp_path: Path) -> None:
    f = tmp_path / "default.yaml"
    f.write_text("scope: {}\nrules:\n  hate: {review: 0.5, block: 0.6}\n")
    store = PolicyStore(tmp_path, TAX)
    v1 = store.policy.version
    assert store.policy.rule("hate.speech").block == 0.6
    f.write_text("scope: {}\nrules:\n  hate: {review: 0.5, block: 0.4}\n")
    assert not store.maybe_reload()
    assert store.policy.version == v1 and store.last_error is not None
    f.write_text("scope: {}\nrules:\n  hate: {review: 0.5, block: 0.7}\n")
    assert store.maybe_reload()
    assert store.policy.version != v1
    assert store.policy.rule("hate.speech").block == 0.7
    assert store.last_error is None


def test_version_is_content_hash(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("scope: {}\nrules: {hate: {review: 0.5}}\n")
    v1 = load_dir(tmp_path, TAX).version
    assert load_dir(tmp_path, TAX).version == v1
    (tmp_path / "a.yaml").write_text("scope: {}\nrules: {hate: {review: 0.4}}\n")
    assert load_dir(tmp_path, TAX).version != v1


def test_block_below_inherited_review_is_refused(tmp_path: Path) -> None:
    (tmp_path / "kids.yaml").write_text("scope: {channel: kids}\nrules:\n  hate: {block: 0.2}\n")
    with pytest.raises(PolicyError, match="below review"):
        load_dir(tmp_path, TAX)
