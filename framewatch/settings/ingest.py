"""Settings of the ingest stage (section `ingest:` in the config file, env `FRAMEWATCH_INGEST__*`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, FilePath


class IngestSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    http_host: str = "127.0.0.1"
    http_port: int = Field(8081, ge=0, le=65535, description="HTTP frame push API")
    default_fps: float = Field(1.0, gt=0, le=60, description="interval sampling rate")
    max_jump_s: float = Field(
        5.0,
        gt=0,
        description="a timestamp jump larger than this (or backwards) re-anchors the sampling "
        "clock instead of bursting or pausing (broken or looping streams)",
    )
    hot_fps: float = Field(4.0, gt=0, le=60, description="sampling rate of a stream marked hot")
    hot_poll_s: float = Field(2.0, gt=0, description="how often the hot flag is read from Redis")
    decode_threads: int = Field(
        1, ge=0, le=64, description="FFmpeg decoder threads a stream, and its thumbnail "
        "scaler's (0: FFmpeg's choice, about one per core). One a stream is cheapest when "
        "streams outnumber cores; raise it for a few high-resolution streams on a big box"
    )  # fmt: skip
    decode_skip_nonref: bool = Field(
        True,
        description="full decode skips the frames no other frame refers to (FFmpeg skip_frame "
        "NONREF: most B-frames; 8-46 % less H.264 decode CPU on the sample videos). Every frame "
        "still decoded is bit-identical (same PDQ, same thumbnail), but a sample due on a skipped "
        "frame is taken from the next one, up to one frame interval (33 ms at 30 fps) later. "
        "Applies only to streams sampled (their fps and hot_fps) at up to a quarter of the "
        "source's frame rate, so the frames left still hold one for every sample; keyframe mode "
        "skips more and ignores it",
    )
    decode_batch_s: float = Field(
        0.2,
        ge=0,
        le=2,
        description="a live stream's packets are decoded in batches spanning up to this many "
        "seconds: a decoder woken for every frame runs cold (one 540x360 stream took 42 CPU ms "
        "a second that way, 26 in batches of 0.2 s; docs/ingest.md). A packet holding a frame "
        "due for sampling is decoded at once, so interval and hot samples are not held back; "
        "a scene cut between them is found up to this much later. 0: decode every packet as it "
        "comes",
    )
    keyframe_skip_loop_filter: bool = Field(
        True,
        description="keyframe mode decodes its keyframes without the codec's deblocking filter "
        "(FFmpeg skip_loop_filter; H.264, HEVC): 11-25 % less decode CPU a keyframe on the "
        "sample videos, PDQ within 0-4 bits and thumbnails within 1.4 grey levels on average of "
        "the filtered picture. No frame is decoded from a keyframe in that mode, so nothing "
        "drifts; full decode always filters",
    )
    thumbnail_short_side: int = Field(384, ge=32, le=2160)
    jpeg_quality: int = Field(85, ge=30, le=100, description="thumbnail JPEG quality")
    scene_cut_threshold: float = Field(
        0.25, gt=0, le=1, description="mean abs luma change (0..1) that counts as a scene cut"
    )
    scene_check_fps: float = Field(5.0, gt=0, description="how often frames are checked for cuts")
    scene_cut_min_gap_s: float = Field(0.5, ge=0, description="min time between scene-cut samples")
    pdq_full_frame: bool = Field(
        False,
        description="hash sampled frames by handing every pixel (as RGB) to pdqhash's C++ "
        "(~20 CPU ms a 720p frame) instead of running PDQ's own filter at the 64x64 points it "
        "keeps on the decoded luma plane (~1 ms; as close to Meta's reference hashes, "
        "docs/ingest.md)",
    )
    dedup_max_distance: int = Field(
        8, ge=-1, le=256, description="suppress a sample within this PDQ distance (-1: never)"
    )
    heartbeat_s: float = Field(10.0, gt=0, description="send a sample at least this often")
    open_timeout_s: float = Field(10.0, gt=0, description="a source that never starts fails")
    read_timeout_s: float = Field(10.0, gt=0, description="a live source silent this long drops")
    reconnect_initial_s: float = Field(0.5, gt=0, description="first reconnect backoff")
    reconnect_max_s: float = Field(30.0, gt=0, description="backoff cap")
    reconnect_max_attempts: int = Field(
        0, ge=0, description="give up after this many failed reconnects in a row (0: never)"
    )
    reconnect_on_end: bool = Field(
        True, description="reconnect when a live URL ends cleanly (24/7 pulls); off: stop"
    )
    allow_private_urls: bool = Field(
        False, description="allow pull URLs resolving to loopback/private/link-local addresses"
    )
    tls_ca_file: FilePath | None = Field(
        None, description="PEM bundle of the CAs that https/rtmps/rtsps pull servers' "
        "certificates must chain to (default: the system's bundle); add a private CA here, "
        "certificates are always verified"
    )  # fmt: skip
    push_max_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="largest pushed image")
    push_max_pixels: int = Field(
        40_000_000, ge=1, description="largest pushed image in pixels (decompression bombs)"
    )
    push_dead_letter_max_bytes: int = Field(
        256 * 1024, ge=0, description="refused pushed images up to this size are kept in their "
        "dead-letter record (larger: reason only); below the broker's message size limit"
    )  # fmt: skip
    body_timeout_s: float = Field(
        30.0, gt=0, description="a request body (pushed image, sources JSON) must arrive whole "
        "within this; a slower client gets 408 and is disconnected (a valid key that trickles "
        "its upload would hold a connection and a request slot for ever)"
    )  # fmt: skip
    push_max_concurrent_decodes: int = Field(
        4, ge=1, description="pushed images decoded at once; the rest wait (peak memory is "
        "about this many times ~10 bytes a pixel of the largest allowed image)"
    )  # fmt: skip
    supervisor_poll_s: float = Field(2.0, gt=0, description="how often registered pulls are read")
    rtmp_host: str = Field("127.0.0.1", description="RTMP listen address")
    rtmp_port: int = Field(0, ge=0, le=65535, description="RTMP listen port (0: no listener)")
    broker_wait_s: float = Field(
        60.0, ge=0, description="at start, wait this long for an unreachable Kafka before failing"
    )
    stop_grace_s: float = Field(
        15.0, gt=0, description="`framewatch ingest` exits at most this long after a stop "
        "signal, or after its stream ended: past it, it prints every thread's stack and exits "
        "(0 if the stream had ended cleanly, 1 if not) instead of waiting on a stuck clean-up"
    )  # fmt: skip
    queue_size: int = Field(64, ge=1, description="sampled frames buffered before Kafka")
    position_save_s: float = Field(
        1.0, gt=0, description="how often a stream's position (seq, pts, dedup) goes to Redis"
    )
    resume_window_s: float = Field(
        30.0,
        ge=0,
        description="a pull restarted within this long of its last saved position continues "
        "the same life of the stream (same session, smoothing goes on); later, or a publisher "
        "that reconnects to the RTMP listener, starts a new life",
    )
    position_ttl_s: int = Field(
        7 * 86400, ge=60, description="how long a stream's saved position is kept in Redis"
    )
    live_buffer: Literal["drop_oldest", "wait"] = Field(
        "drop_oldest", description="a live source's full buffer drops its oldest sample "
        "(counted) so decisions stay near real time; 'wait' slows the reader instead. Files "
        "always wait"
    )  # fmt: skip
    stall_s: float = Field(
        5.0, gt=0, description="a connected live source with no frame this long is 'stalled'"
    )
    rtmp_handshake_timeout_s: float = Field(
        10.0, gt=0, description="an RTMP publisher must send its valid stream key within this"
    )
    rtmp_idle_timeout_s: float = Field(
        30.0, gt=0, description="an RTMP publisher silent this long is disconnected"
    )
    rtmp_max_publishers: int = Field(
        16, ge=1, description="RTMP publishers ingested at once; more are refused"
    )
