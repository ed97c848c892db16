"""ingest.decode_threads reaches the decoder of every pulled stream: one thread a stream by
default (streams are the parallelism), FFmpeg's own choice with 0."""

from __future__ import annotations

from devkit.testdata import video
from framewatch.settings import load_settings
from ingest.engine import StreamMeta
from ingest.runner import StreamIngester


def _decoder_threads(decode_threads: int | None) -> int:
    kw = {} if decode_threads is None else {"ingest": {"decode_threads": decode_threads}}
    settings = load_settings(**kw)
    ing = StreamIngester(settings, str(video("chair-orig-22-sd-bar.mp4")), StreamMeta("s", "a"))
    with ing._connection() as src:
        assert src._container is not None
        next(src.frames())  # opened and decoding
        return src._container.streams.video[0].codec_context.thread_count


def test_one_decoder_thread_a_stream_by_default() -> None:
    assert _decoder_threads(None) == 1


def test_decode_threads_setting_reaches_the_decoder() -> None:
    assert _decoder_threads(3) == 3
