"""tools/gpu_bundle.py keeps one GPU generation's kernels in onnxruntime-gpu's CUDA provider:
the wanted kernel images byte for byte, every other one zeroed, PTX and the rest untouched."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location(
    "gpu_bundle", Path(__file__).resolve().parents[2] / "tools" / "gpu_bundle.py"
)
assert _spec and _spec.loader
gpu_bundle = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_bundle)
keep_only_sm = gpu_bundle.keep_only_sm


def entry(kind: int, arch: int, payload: bytes) -> bytes:
    header = struct.pack("<HHIQ", kind, 0x0101, 64, len(payload))
    header += bytes(12) + struct.pack("<I", arch)  # the architecture at offset 28
    return header.ljust(64, b"\0") + payload


def fatbin(*entries: bytes) -> bytes:
    body = b"".join(entries)
    return struct.pack("<IHHQ", 0xBA55ED50, 1, 16, len(body)) + body


def test_other_generations_are_zeroed_and_the_wanted_one_kept() -> None:
    sm80, sm90, ptx = b"A" * 100, b"B" * 70, b"C" * 30
    lib = bytearray(b"ELF..." + fatbin(entry(2, 80, sm80), entry(2, 90, sm90), entry(1, 120, ptx))
                    + b"tail" + fatbin(entry(2, 120, b"D" * 50)) + b"\xba\x55\xed\x50 not one")  # fmt: skip
    before = bytes(lib)
    zeroed, kept = keep_only_sm(lib, 90)
    assert (zeroed, kept) == (150, 100)
    assert len(lib) == len(before)
    assert sm90 in lib and ptx in lib and b"tail" in lib and lib.startswith(b"ELF...")
    assert b"A" * 100 not in lib and b"D" * 50 not in lib
    assert lib.endswith(b"\xba\x55\xed\x50 not one")  # a stray magic number is left alone


def test_a_python_without_the_project_is_refused_and_the_last_bundle_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run with the system's python3, the bundle fell back to the newest release of every
    package (not what the tests ran), failed building pdqhash, and had already deleted the
    parts of the last good bundle."""
    with pytest.raises(gpu_bundle.BundleError, match=r"\.venv/bin/python tools/gpu_bundle\.py"):
        gpu_bundle.pinned(["numpy", "no-such-package-framewatch"])
    assert gpu_bundle.pinned(["numpy"]) == [f"numpy=={np.__version__}"]
    monkeypatch.setattr(gpu_bundle, "WHEELS", ["no-such-package-framewatch"])
    (tmp_path / "p00").write_bytes(b"the last good bundle")
    with pytest.raises(gpu_bundle.BundleError):
        gpu_bundle.bundle(tmp_path, "3.12", 90, 36)
    assert (tmp_path / "p00").read_bytes() == b"the last good bundle"
