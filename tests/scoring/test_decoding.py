"""Pure unit tests: YOLOv8 decoding + NMS, softmax/sigmoid, the micro-batcher."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from scoring import registry
from scoring.batcher import MicroBatcher
from scoring.model import Model


def _bare(name: str, **over) -> Model:  # type: ignore[no-untyped-def]
    m = Model.__new__(Model)
    data = {**registry.BUILTIN[name], **over}
    m.manifest = registry.parse(data, "test")
    m.ref = m.manifest.ref
    return m


def test_yolov8_decoding_keeps_best_box_after_nms_and_maps_labels() -> None:
    m = _bare("nudenet-320n")
    nc = len(m.manifest.output.labels)
    pred = np.zeros((1, 4 + nc, 3), np.float32)
    k = m.manifest.output.labels.index("FEMALE_BREAST_EXPOSED")
    # two overlapping boxes of one class (NMS keeps the 0.9), one weak box (dropped)
    pred[0, :4, 0] = [160, 160, 100, 100]
    pred[0, 4 + k, 0] = 0.9
    pred[0, :4, 1] = [162, 161, 100, 100]
    pred[0, 4 + k, 1] = 0.8
    pred[0, :4, 2] = [50, 50, 20, 20]
    pred[0, 4 + k, 2] = 0.1
    (res,) = m.decode(pred, [(1 / 320, 1 / 320)])
    assert len(res.detections) == 1
    d = res.detections[0]
    assert d.category == "sexual.explicit.exposed_breasts"
    assert abs(d.score - 0.9) < 1e-6
    assert np.allclose(d.box, (110 / 320, 110 / 320, 210 / 320, 210 / 320), atol=1e-4)
    assert res.scores["sexual.explicit.exposed_breasts"] == d.score
    assert res.scores["sexual.explicit.exposed_genitalia"] == 0.0


def test_softmax_and_sigmoid_decoding() -> None:
    out = {"decoding": "softmax", "labels": ["sfw", "nsfw"]}
    m = _bare("opennsfw", output=out)
    (r,) = m.decode(np.array([[0.0, np.log(3.0)]], np.float32), [(1, 1)])
    assert abs(r.scores["sexual"] - 0.75) < 1e-5
    m = _bare("opennsfw", output={**out, "decoding": "sigmoid"})
    (r,) = m.decode(np.array([[0.0, 0.0]], np.float32), [(1, 1)])
    assert abs(r.scores["sexual"] - 0.5) < 1e-6


async def test_micro_batcher_batches_and_returns_each_callers_result() -> None:
    seen: list[int] = []

    def fn(items):  # type: ignore[no-untyped-def]
        seen.append(len(items))
        return [i * 2 for i in items]

    with ThreadPoolExecutor(1) as ex:
        b = MicroBatcher(fn, max_batch=4, max_wait_ms=50, executor=ex)
        b.start()
        got = await asyncio.gather(*(b.submit(i) for i in range(10)))
        await b.stop()
    assert got == [i * 2 for i in range(10)]
    assert max(seen) == 4 and sum(seen) == 10 and len(seen) < 10


async def test_urgent_items_and_the_ones_promoted_go_into_the_next_batch_first() -> None:
    """A batch is running; 1-5 wait in order. 9 comes urgent and 4 is promoted: the next
    batch is 9 and 4 alone (queued frames beside them would delay them), then the queue in
    its order."""
    release = threading.Event()
    batches: list[list[int]] = []

    def fn(items):  # type: ignore[no-untyped-def]
        release.wait(5)
        batches.append(list(items))
        return items

    with ThreadPoolExecutor(1) as ex:
        b = MicroBatcher(fn, max_batch=3, max_wait_ms=0, executor=ex)
        b.start()
        first = asyncio.ensure_future(b.submit(0))
        await asyncio.sleep(0.05)  # batch [0] is running, blocked in fn
        queued = [asyncio.ensure_future(b.submit(i)) for i in range(1, 6)]
        await asyncio.sleep(0)
        urgent = asyncio.ensure_future(b.submit(9, urgent=True))
        await asyncio.sleep(0)
        assert b.promote(lambda i: i == 4) == 1 and b.waiting() == 6
        release.set()
        got = await asyncio.gather(first, *queued, urgent)
        await b.stop()
    assert got == [0, 1, 2, 3, 4, 5, 9]  # each caller gets its own result
    assert batches == [[0], [9, 4], [1, 2, 3], [5]]


async def test_micro_batcher_runs_batches_side_by_side() -> None:
    """With two slots a second batch starts while the first still runs (each waits here for
    the other); with one, the first would time out alone."""
    both = threading.Barrier(2, timeout=5)

    def fn(items):  # type: ignore[no-untyped-def]
        both.wait()
        return items

    with ThreadPoolExecutor(2) as ex:
        b = MicroBatcher(fn, max_batch=1, max_wait_ms=0, executor=ex, concurrency=2)
        b.start()
        got = await asyncio.gather(b.submit(1), b.submit(2))
        await b.stop()
    assert sorted(got) == [1, 2]


def _slow_on_0(release: threading.Event):  # type: ignore[no-untyped-def]
    """A batch function that holds a batch with item 0 until ``release`` is set."""

    def fn(items):  # type: ignore[no-untyped-def]
        if 0 in items:
            release.wait(5)
        return items

    return fn


async def test_urgent_items_run_beside_busy_slots_and_ordinary_ones_wait() -> None:
    """The one slot is busy with a slow batch. An urgent item, and a queued one promoted, run
    in the urgent slot at once; an ordinary item waits for the slot."""
    release = threading.Event()

    with ThreadPoolExecutor(2) as ex:
        b = MicroBatcher(_slow_on_0(release), 4, 0, executor=ex, urgent_slots=1)
        b.start()
        first = asyncio.ensure_future(b.submit(0))
        await asyncio.sleep(0.05)  # batch [0] is running, blocked in fn
        ordinary = [asyncio.ensure_future(b.submit(i)) for i in (1, 2)]
        urgent = asyncio.ensure_future(b.submit(9, urgent=True))
        async with asyncio.timeout(2):
            assert await urgent == 9
        assert b.promote(lambda i: i == 2) == 1
        async with asyncio.timeout(2):
            assert await ordinary[1] == 2
        await asyncio.sleep(0.05)
        assert not first.done() and not ordinary[0].done()  # the urgent slot took neither
        release.set()
        async with asyncio.timeout(5):
            assert await asyncio.gather(first, ordinary[0]) == [0, 1]
        await b.stop()


async def test_without_an_urgent_slot_an_urgent_item_waits_for_the_busy_slot() -> None:
    """``scoring.urgent_batches`` 0 (the batcher before it): the urgent item waits."""
    release = threading.Event()

    with ThreadPoolExecutor(2) as ex:
        b = MicroBatcher(_slow_on_0(release), 4, 0, executor=ex, urgent_slots=0)
        b.start()
        first = asyncio.ensure_future(b.submit(0))
        await asyncio.sleep(0.05)
        urgent = asyncio.ensure_future(b.submit(9, urgent=True))
        await asyncio.sleep(0.2)
        assert not urgent.done()
        release.set()
        async with asyncio.timeout(5):
            assert await asyncio.gather(first, urgent) == [0, 9]
        await b.stop()
