"""A tiny Faust app run as a subprocess by test_faust_compat: a table of distinct ids per key.

argv: bootstrap app_id topic expected_total. Writes the file ``ready`` once table recovery is
done, prints 'TOTAL n' and exits once the table holds expected_total distinct ids (so a second run
proves the table was recovered from its changelog). The test sends its records only after
``ready``: Faust 0.15 can drop source records fetched while recovery seeks its partitions (the bug
streams/guard.py covers in our worker), and this probe is about the changelog, not that bug.
"""

import sys
from pathlib import Path

import faust

bootstrap, app_id, topic_name, expected = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
app = faust.App(
    app_id,
    broker=f"kafka://{bootstrap}",
    store="memory://",
    web_enabled=False,
    topic_partitions=3,
    topic_disable_leader=True,
)
topic = app.topic(topic_name, key_serializer="raw", value_serializer="raw", partitions=3)
ids = app.Table("ids", default=list, partitions=3)


@app.agent(topic)
async def collect(stream):
    async for key, value in stream.items():
        k = key.decode()
        ids[k] = sorted({*ids[k], value.decode()})  # idempotent: a replayed id counts once


@app.timer(0.5)
async def check():
    if app.tables.recovery.completed.is_set() and not app.rebalancing:
        Path("ready").touch()
    total = sum(len(v) for v in ids.values())
    if total >= expected:
        await app.producer.flush()  # changelog writes reach the broker before we exit
        print(f"TOTAL {total}", flush=True)
        await app.stop()
        sys.exit(0)


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "-l", "warn"]
    app.main()
