"""A tiny Faust app run as a subprocess by test_faust_compat: counts per key in a table.

argv: bootstrap app_id topic expected_total. Prints 'TOTAL n' and exits once the table's total
reaches expected_total (so a second run proves the table was recovered from its changelog).
"""

import sys

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
counts = app.Table("counts", default=int, partitions=3)


@app.agent(topic)
async def count(stream):
    async for key, _value in stream.items():
        counts[key.decode()] += 1


@app.timer(0.5)
async def check():
    total = sum(counts.values())
    if total >= expected:
        await app.consumer.commit()  # so the next run starts after what this one counted
        print(f"TOTAL {total} {dict(counts.items())}", flush=True)
        await app.stop()
        sys.exit(0)


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "-l", "warn"]
    app.main()
