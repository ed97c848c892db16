"""A built wheel carries every data file: run from it, in an empty folder, with no checkout near.

This is where a policy, config or sample video missing from the package data shows up, before a
user's `pip install framewatch` or the container image finds it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from framewatch.local import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
    return out


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, a venv with only the wheel installed; dependencies come from the test venv)."""
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(dist), str(REPO)], cwd=tmp)  # fmt: skip
    (wheel,) = dist.glob("framewatch-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    site = Path(
        subprocess.check_output(
            [
                venv / "bin" / "python",
                "-c",
                "import sysconfig; print(sysconfig.get_path('purelib'))",
            ],
            text=True,
        ).strip()
    )
    # the dependencies, not framewatch: a .pth in a folder reached through a .pth is not run,
    # so the test venv's editable hook for the checkout stays off
    deps = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (site / "deps.pth").write_text("\n".join(deps) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
          "--no-deps", "-q", str(wheel)], cwd=tmp)  # fmt: skip
    return wheel, venv


def test_wheel_lists_every_data_file(wheel_venv: tuple[Path, Path]) -> None:
    wheel, _ = wheel_venv
    names = set(zipfile.ZipFile(wheel).namelist())
    for need in (
        "framewatch/data/policies/default.yaml",
        "framewatch/data/taxonomy.yaml",
        "framewatch/data/local/server.properties",
        "framewatch/data/local/pom.xml",
        "framewatch/data/local/redis.conf",
        "framewatch/schemas/decision.v1.json",
        "devkit/data/videos/chair-orig-22-sd-bar.mp4",
        "devkit/data/vpdq/chair-orig-22-sd-bar.txt",
        "devkit/data/LICENSE-ThreatExchange.txt",
        "devkit/data/eval/safe/darknet-dog.jpg",
        "devkit/data/eval/sexual/composite-0.jpg",
        "devkit/data/eval/violence/weapons/firearm/clipart-9_mm_gun_01.jpg",
        "devkit/data/eval/gambling/casino/drawn-slot-machine-0.jpg",
        "devkit/data/eval/signal/object/bottle/baby-bottle-astronaut.jpg",  # three folders deep
        "devkit/data/faces/skimage-astronaut.jpg",
        "scoring/models/efficientnet-lite3.onnx",
        "scoring/models/efficientnet-lite3.labels.txt",
        "scoring/models/nanodet.onnx",
        "scoring/models/nanodet.labels.txt",
        "scoring/models/blazeface.onnx",
        "scoring/models/PROVENANCE.json",
    ):
        assert need in names, f"{need} is not in {wheel.name}"


def test_installed_wheel_runs_from_an_empty_folder(
    wheel_venv: tuple[Path, Path], tmp_path: Path
) -> None:
    _, venv = wheel_venv
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMEWATCH_")}
    env.pop("PYTHONPATH", None)
    py = str(venv / "bin" / "python")
    probe = (
        "import json, devkit.testdata as t, framewatch, streams.policy as p;"
        "print(json.dumps({'core': framewatch.__file__,"
        " 'videos': str(t.video('chair-orig-22-sd-bar.mp4')), 'policy': str(p.DEFAULT_POLICY)}))"
    )
    where = json.loads(_run([py, "-c", probe], cwd=empty, env=env).stdout)
    for path in where.values():
        assert path.startswith(str(venv)), f"{path} is not inside the installed wheel"
        assert Path(path).exists()

    fw = str(venv / "bin" / "framewatch")
    explained = _run(
        [fw, "policy", "explain", "--json", "--scores", '{"violence.gore": 0.99}'], empty, env
    )
    assert json.loads(explained.stdout)["policy_version"]

    env.update({
        "FRAMEWATCH_LOCAL__STATE_DIR": str(tmp_path / "state"),
        "FRAMEWATCH_LOCAL__KAFKA_PORT": str(free_port()),
        "FRAMEWATCH_LOCAL__CONTROLLER_PORT": str(free_port()),
        "FRAMEWATCH_LOCAL__REDIS_PORT": str(free_port()),
    })  # fmt: skip
    try:
        started = _run([fw, "local", "start", "--json"], empty, env)
        st = json.loads(started.stdout)
        assert st["kafka"]["up"] and st["redis"]["up"]
    finally:
        subprocess.run([fw, "local", "stop", "--json"], cwd=empty, env=env, timeout=120,
                       capture_output=True)  # fmt: skip
