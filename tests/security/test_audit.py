"""`make audit` never passes an audit that checked nothing (tools/audit.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_an_unchecked_package_makes_the_audit_incomplete_not_clean(tmp_path: Path) -> None:
    # a name PyPI has never had: whether PyPI answers 404 or is unreachable, it goes unchecked
    lock = tmp_path / "requirements.lock"
    lock.write_text("framewatch-no-such-package-7f3a==0.0.1\n")
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / "audit.py"), str(lock)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 3, out.stdout + out.stderr
    assert "INCOMPLETE" in out.stderr and "clean" not in out.stdout


def test_the_lock_pins_every_runtime_dependency() -> None:
    lock = (REPO / "requirements.lock").read_text().lower()
    pins = {
        re.sub(r"[-_.]+", "-", line.split("==")[0]) for line in lock.splitlines() if "==" in line
    }
    for dep in ("aiokafka", "faust-streaming", "av", "pillow", "aiohttp", "redis",
                "onnxruntime-gpu", "pip-audit", "schemathesis"):  # fmt: skip
        assert dep in pins, dep
    assert "framewatch" not in pins and "onnxruntime" not in pins  # ours; plain ORT never
