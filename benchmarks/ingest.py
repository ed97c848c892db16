"""How many real-time 720p30 H.264 streams one core can ingest at 1 fps.

Measures CPU time (all threads, one decoder thread) of these passes over the same file:

* every frame: plain PyAV decode of every frame, what ingest did before
  ``ingest.decode_skip_nonref``;
* ceiling: plain PyAV decode as ingest configures it (with ``ingest.decode_skip_nonref``, on by
  default, the frames no other frame refers to are not decoded), no sampling, hashing or Kafka;
* full: framewatch's decode + interval/scene-cut sampling + PDQ + thumbnail JPEG (no Kafka);
* keyframe: the same in keyframe mode (non-key packets never reach the decoder; keyframes
  decoded without the deblocking filter while ``ingest.keyframe_skip_loop_filter`` is on);
* keyframe decode: keyframe mode's decode alone, against the ceiling (what skipping buys the
  decoder; the keyframe pipeline adds PDQ and a JPEG for every sampled keyframe);
* steps: where the full pipeline's CPU goes past decoding: each step of ``SampleEngine.process``
  (PDQ, thumbnail, scene signature and comparison) timed on the decode thread, best of
  ``--step-rounds`` passes;
* paced: the full pipeline on the first ``--paced-seconds`` of the video played in real time,
  as a live stream arrives, with every packet decoded as it comes and in batches of
  ``ingest.decode_batch_s`` (taken in turn, best of two): what waking the decoder costs.

streams_per_core = video seconds / CPU seconds. Usage: ``python benchmarks/ingest.py [VIDEO]``;
without VIDEO a 720p30 H.264 file (2 s GOP, like live streams) is made from the sample videos.
``FRAMEWATCH_INGEST__DECODE_SKIP_NONREF=false`` measures the decode of every frame as before.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import av

# this file is named ingest.py: keep its folder off sys.path so `ingest` is the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from devkit.testdata import video  # noqa: E402
from framewatch.settings import load_settings  # noqa: E402
from ingest import framedata, sampling  # noqa: E402
from ingest.engine import SampleEngine, StreamMeta  # noqa: E402
from ingest.source import VideoSource  # noqa: E402


def make_720p30(out: Path, seconds: float = 20.0) -> Path:
    """Re-encode doorknob-hd-no-bar.mp4 (1280x720, 30 fps) in a loop to `seconds` of H.264."""
    src = video("doorknob-hd-no-bar.mp4")
    with av.open(str(src)) as inp:
        frames = [f.to_ndarray(format="yuv420p") for f in inp.decode(video=0)]
    with av.open(str(out), "w") as container:
        st = container.add_stream("libx264", rate=30)
        st.width, st.height, st.pix_fmt = 1280, 720, "yuv420p"
        st.codec_context.gop_size = 60
        st.options = {"preset": "veryfast", "crf": "23"}
        n = int(seconds * 30)
        for i in range(n):
            # ping-pong so the loop has no hard cut every 4 s
            k = i % (2 * len(frames) - 2)
            arr = frames[k if k < len(frames) else 2 * len(frames) - 2 - k]
            frame = av.VideoFrame.from_ndarray(arr, format="yuv420p")
            frame.pts = i
            container.mux(st.encode(frame))
        container.mux(st.encode(None))
    return out


def duration_of(path: str) -> float:
    with VideoSource(path, threads=1) as src:
        last = 0.0
        for df in src.frames():
            last = df.pts
        return last + 1.0 / (src.fps or 30.0)


def cpu_best(passes: dict[str, Callable[[], object]], rounds: int = 5) -> dict[str, float]:
    """Best CPU seconds of each pass over `rounds` rounds, the passes taken in turn: this
    shared machine's speed drifts within a minute, and every ratio here compares two passes."""
    best = dict.fromkeys(passes, float("inf"))
    for _ in range(rounds):
        for name, fn in passes.items():
            t0 = time.process_time()
            fn()
            best[name] = min(best[name], time.process_time() - t0)
    return best


@contextmanager
def step_clocks() -> Iterator[dict[str, float]]:
    """Time the pipeline's steps (thread CPU seconds, summed) while inside: the functions
    ``SampleEngine.process`` calls are wrapped in place and restored on the way out."""
    spent: dict[str, float] = {}
    targets = [
        (framedata, "frame_pdq", "pdq"),
        (framedata.Thumbnailer, "__call__", "thumbnail"),
        (framedata, "scene_signature", "scene_signature"),
        (sampling.SceneCutDetector, "change", "scene_compare"),
    ]
    originals = [getattr(owner, name) for owner, name, _ in targets]

    def timed(fn: Callable[..., object], key: str) -> Callable[..., object]:
        def run(*args: object, **kwargs: object) -> object:
            t0 = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[key] = spent.get(key, 0.0) + time.thread_time() - t0

        return run

    for (owner, name, key), fn in zip(targets, originals, strict=True):
        setattr(owner, name, timed(fn, key))
    try:
        yield spent
    finally:
        for (owner, name, _), fn in zip(targets, originals, strict=True):
            setattr(owner, name, fn)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("video", nargs="?", help="720p30 H.264 file (default: made from samples)")
    ap.add_argument("--fps", type=float, default=1.0, help="sampling rate (default 1)")
    ap.add_argument("--step-rounds", type=int, default=5,
                    help="passes of the full pipeline with each step timed (default 5; 0: none)")  # fmt: skip
    ap.add_argument("--paced-seconds", type=float, default=10.0,
                    help="seconds of real-time play for each paced pass (default 10; 0: none)")  # fmt: skip
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    video = args.video or str(make_720p30(Path(tmp.name) / "bench-720p30.mp4"))
    settings = load_settings()
    seconds = duration_of(video)
    skip = settings.ingest.decode_skip_nonref
    sample_fps = max(args.fps, settings.ingest.hot_fps)  # as ingest passes it

    unfiltered = settings.ingest.keyframe_skip_loop_filter  # keyframe mode only

    def ceiling(keyframes: bool = False, skip_nonref: bool = skip) -> None:
        with VideoSource(video, threads=1, keyframes_only=keyframes, skip_nonref=skip_nonref,
                         skip_loop_filter=unfiltered, sample_fps=sample_fps) as src:  # fmt: skip
            for _ in src.frames():
                pass

    def pipeline(keyframes: bool, paced_batch_s: float | None = None) -> dict[str, int]:
        engine = SampleEngine(settings, StreamMeta("bench", "bench"), fps=args.fps,
                              keyframes_only=keyframes)  # fmt: skip
        paced = paced_batch_s is not None
        with VideoSource(video, threads=1, keyframes_only=keyframes, skip_nonref=skip,
                         skip_loop_filter=unfiltered, sample_fps=sample_fps, realtime=paced,
                         batch_s=paced_batch_s or 0.0) as src:  # fmt: skip
            for frame in engine.process(src.frames(wanted=engine.wants)):
                if paced and frame.pts >= args.paced_seconds:
                    break  # a sample at that time: the passes end on the same frame
        return {"decoded": engine.counts.read, "sent": engine.counts.sampled}

    stats: dict[str, dict[str, int]] = {}
    t = cpu_best({
        "every": lambda: ceiling(skip_nonref=False),
        "ceiling": ceiling,
        "full": lambda: stats.__setitem__("full", pipeline(False)),
        "keyframe": lambda: stats.__setitem__("keyframe", pipeline(True)),
        "keyframe_decode": lambda: ceiling(True),
    })  # fmt: skip
    t_every, t_full, t_key, t_key_decode = (t[k] for k in ("every", "full", "keyframe",
                                                            "keyframe_decode"))  # fmt: skip
    steps: dict[str, float] = {}
    for _ in range(args.step_rounds):
        with step_clocks() as spent:
            t0 = time.thread_time()
            pipeline(False)
            spent["pass"] = time.thread_time() - t0
        steps = {k: min(v, steps.get(k, v)) for k, v in spent.items()}
    steps_ms = {k: round(1000 * v, 1) for k, v in steps.items()}
    batch_s = settings.ingest.decode_batch_s
    paced_s = min(args.paced_seconds, seconds)
    paced: dict[str, float] = {}
    if paced_s > 0:
        print(f"paced passes: 2 rounds of 2 x {paced_s:g} s in real time ...", file=sys.stderr)
        t_paced = cpu_best({"each_packet": lambda: pipeline(False, 0.0),
                            "batched": lambda: pipeline(False, batch_s)}, rounds=2)  # fmt: skip
        paced = {k: round(1000 * v / paced_s, 1) for k, v in t_paced.items()}
    t_ceiling = t["ceiling"] if skip else t_every
    ceil_spc = seconds / t_ceiling
    full_spc = seconds / t_full
    key_spc = seconds / t_key
    print(f"video: {video} ({seconds:.1f} s)", file=sys.stderr)
    print(f"decode of every frame: {t_every:.2f} CPU s ({1000 * t_every / seconds:.1f} ms a "
          f"stream-second) -> {seconds / t_every:.1f} streams/core")  # fmt: skip
    print(f"ceiling (decode only, decode_skip_nonref {skip}): {t_ceiling:.2f} CPU s "
          f"({1000 * t_ceiling / seconds:.1f} ms a stream-second, "
          f"{100 * (1 - t_ceiling / t_every):.0f}% less than every frame) -> {ceil_spc:.1f} "
          "streams/core")  # fmt: skip
    print(f"full decode + sampling: {t_full:.2f} CPU s -> {full_spc:.1f} streams/core "
          f"({100 * full_spc / ceil_spc:.0f}% of ceiling; goal >= 90%)")  # fmt: skip
    print(f"keyframe mode: {t_key:.2f} CPU s -> {key_spc:.1f} streams/core "
          f"({key_spc / full_spc:.1f}x full; goal >= 10x)")  # fmt: skip
    print(f"keyframe decode only: {t_key_decode:.3f} CPU s ({t_every / t_key_decode:.1f}x the "
          f"decode of every frame); PDQ + JPEG of the {stats['keyframe']['sent']} sampled keyframes is the "
          f"rest of keyframe mode")  # fmt: skip
    if steps_ms:
        past = sum(v for k, v in steps_ms.items() if k != "pass")
        print(f"full pipeline past decoding, CPU ms a {seconds:.0f} s pass (best of "
              f"{args.step_rounds}, each step on its own clock): PDQ {steps_ms.get('pdq', 0):.1f}, "
              f"thumbnail {steps_ms.get('thumbnail', 0):.1f}, scene signature "
              f"{steps_ms.get('scene_signature', 0):.1f} + comparison "
              f"{steps_ms.get('scene_compare', 0):.1f} = {past:.1f}, against the ceiling's "
              f"{1000 * t_ceiling:.0f} (0.9 of the ceiling allows {1000 * t_ceiling / 9:.0f} "
              "for everything past decoding)")  # fmt: skip
    if paced:
        print(f"paced in real time, full pipeline: decoder woken for every packet "
              f"{paced['each_packet']:.1f} CPU ms a stream-second; in batches of {batch_s:g} s "
              f"(ingest.decode_batch_s) {paced['batched']:.1f} "
              f"({100 * (1 - paced['batched'] / paced['each_packet']):.0f}% less)")  # fmt: skip
    print(json.dumps({
        "video": video if args.video else "generated 1280x720 30 fps H.264, GOP 60",
        "video_seconds": round(seconds, 2),
        "sample_fps": args.fps,
        "decode_skip_nonref": skip,
        "keyframe_skip_loop_filter": unfiltered,
        "decode_ms_per_stream_s_every_frame": round(1000 * t_every / seconds, 1),
        "decode_ms_per_stream_s": round(1000 * t_ceiling / seconds, 1),
        "streams_per_core_full": round(full_spc, 2),
        "streams_per_core_keyframe": round(key_spc, 2),
        "ceiling_streams_per_core": round(ceil_spc, 2),
        "ratio_to_ceiling": round(full_spc / ceil_spc, 3),
        "keyframe_over_full": round(key_spc / full_spc, 2),
        "keyframe_decode_over_full_decode": round(t_every / t_key_decode, 2),
        "decode_batch_s": batch_s,
        "steps_ms_per_pass": steps_ms,
        "paced_ms_per_stream_s": paced,
        "frames": stats,
    }))  # fmt: skip
    tmp.cleanup()


if __name__ == "__main__":
    main()
