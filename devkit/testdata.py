"""The one locator for the bundled test data: sample videos and Meta's reference vPDQ hashes.

The files ship inside the package (``devkit/data``, BSD, from Meta's ThreatExchange; see
``devkit/data/README.md``), so a clone, an editable install and a built wheel all find them.
``FRAMEWATCH_TESTDATA`` points at another folder with the same layout (``videos/``, ``vpdq/``).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from framewatch.errors import FramewatchError

ENV = "FRAMEWATCH_TESTDATA"


def testdata_dir() -> Path:
    """The folder holding ``videos/`` and ``vpdq/``."""
    env = os.environ.get(ENV)
    if env:
        folder = Path(env)
        if not (folder / "videos").is_dir():
            raise FramewatchError(
                f"{ENV}={env} has no videos/ folder: point it at a folder laid out like "
                "devkit/data (videos/, vpdq/), or unset it to use the bundled sample videos"
            )
        return folder
    folder = Path(str(resources.files("devkit") / "data"))
    if not (folder / "videos").is_dir():
        raise FramewatchError(
            f"the bundled sample videos are missing from {folder}: reinstall framewatch "
            f"(the wheel ships devkit/data), or set {ENV} to a folder that holds videos/"
        )
    return folder


def video(name: str) -> Path:
    """One bundled sample video by file name, e.g. ``chair-orig-22-sd-bar.mp4``."""
    path = testdata_dir() / "videos" / name
    if not path.is_file():
        have = sorted(p.name for p in (testdata_dir() / "videos").iterdir())
        raise FramewatchError(f"no sample video named {name!r}; there are {have}")
    return path


def video_jpegs(name: str, n: int, size: tuple[int, int]) -> list[bytes]:
    """The first ``n`` frames of a sample video as JPEGs (quality 80) of ``size`` (w, h): the
    frames the scoring benchmarks feed."""
    import av
    import cv2

    out: list[bytes] = []
    with av.open(str(video(name))) as c:
        for f in c.decode(video=0):
            img = cv2.resize(f.to_ndarray(format="bgr24"), size)
            out.append(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes())
            if len(out) >= n:
                break
    return out


def vpdq(name: str) -> Path:
    """Meta's reference vPDQ hashes of one sample video (``NAME.txt``)."""
    return testdata_dir() / "vpdq" / f"{Path(name).stem}.txt"
