"""Checks the installed environment for the conflicts pip cannot express.

Plain ``onnxruntime`` and ``onnxruntime-gpu`` install into the same ``onnxruntime`` folder; with
both present, whichever came last wins and the other's files break it. Run after installing.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version


def problems() -> list[str]:
    out = []
    try:
        version("onnxruntime")
        out.append(
            "plain onnxruntime is installed beside onnxruntime-gpu: run "
            "`pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu` "
            "and install model packages with --no-deps (requirements-nodeps.txt)"
        )
    except PackageNotFoundError:
        pass
    try:
        import onnxruntime

        if not hasattr(onnxruntime, "InferenceSession"):
            out.append("onnxruntime is broken (half-uninstalled): reinstall onnxruntime-gpu")
    except ImportError as exc:
        out.append(f"onnxruntime-gpu does not import: {exc}")
    return out


def main() -> int:
    found = problems()
    for p in found:
        print(f"environment problem: {p}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
