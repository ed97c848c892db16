"""Hostile policy YAML (issue 13 item 6): a clear file:line error, bounded cost, no traceback; a
hot reload of any bad file keeps the running policy, is counted, and costs no record."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from framewatch import taxonomy
from framewatch.metrics import sample_value
from framewatch.records import Scores
from framewatch.settings import load_settings
from streams.policy import PolicyStore
from streams.processor import Processor

TAX = taxonomy.load()
OK = b"scope: {}\nrules:\n  hate: {review: 0.5, block: 0.6}\n"


def _bomb() -> bytes:
    """The classic billion laughs: 342 bytes, 9^9 strings for anything that walks it."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{','.join(['*' + prev] * 9)}]")
    return ("\n".join(lines) + "\n").encode()


HOSTILE = {
    "alias_bomb": (_bomb(), 2, "aliases"),
    "huge_int": (b"scope: {}\nquiet_period_s: " + b"9" * 5000 + b"\n", 2, "5000 digits"),
    "not_utf8": (b"scope: {}\nrules:\n  hate: {review: 0.5}\n  # caf\xe9\n", 4, "not UTF-8"),
    "deep": (b"rules: " + b"[" * 20000 + b"]" * 20000 + b"\n", 1, "nested deeper"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_policy_check_gives_file_line_and_no_traceback(case: str, tmp_path: Path) -> None:
    raw, line, words = HOSTILE[case]
    f = tmp_path / f"{case}.yaml"
    f.write_bytes(raw)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEWATCH_")}
    out = subprocess.run(
        [sys.executable, "-m", "framewatch.cli", "policy", "check", str(f)],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert f"{f}:{line}: " in out.stderr and words in out.stderr, out.stderr


def _refused() -> float:
    return sample_value("framewatch_streams_policy_refused_total") or 0.0


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hot_reload_of_a_hostile_file_keeps_the_running_policy(case: str, tmp_path: Path) -> None:
    (tmp_path / "default.yaml").write_bytes(OK)
    store = PolicyStore(tmp_path, TAX)
    v1, before = store.policy.version, _refused()
    (tmp_path / "default.yaml").write_bytes(HOSTILE[case][0])
    assert not store.maybe_reload()
    assert store.policy.version == v1 and store.policy.rule("hate.speech").block == 0.6
    assert store.last_error is not None and HOSTILE[case][2] in str(store.last_error)
    assert _refused() == before + 1
    assert sample_value("framewatch_streams_policy_ok") == 0


def test_an_unexpected_error_during_reload_costs_no_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not only PolicyError: whatever load_dir raises, the next scores record is decided."""
    (tmp_path / "default.yaml").write_bytes(OK)
    s = load_settings(streams={"policy_dir": tmp_path, "reload_interval_s": 0.001})
    proc = Processor(s)
    (tmp_path / "tenant.yaml").write_bytes(b"scope: {tenant: t}\n")

    def boom(*_a: object) -> None:
        raise MemoryError("simulated")

    monkeypatch.setattr("streams.policy.load_dir", boom)
    sc = Scores(frame_id="f0", stream_id="s", account_id="a", seq=0, captured_at=1.0,
                scored_at=1.0, models={}, scores={"hate.speech": 0.9})  # fmt: skip
    time.sleep(0.01)  # past the reload interval: the reload is tried on this record
    res = proc.on_scores(None, sc)
    assert res.state is not None  # decided with the running policy
    assert "MemoryError" in str(proc.policies.last_error)
