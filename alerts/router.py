"""The alert router: topics -> routes -> sinks, once per sink, never dropping a record.

At-least-once: a batch's offsets are committed only after every record in it was delivered
(or dead-lettered). Once-per-sink: a Redis mark per (sink, record id, kind, tier) is written
only after the sink accepted, and checked before sending, so replays do not page twice.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter, Gauge
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from alerts import lanes
from alerts.api_doc import Acknowledged, Healthy, openapi
from alerts.delivery import LATENCY, OPEN_INCIDENTS, Deliverer, Outcome, init_series
from alerts.routing import Routable, Route, Routing, Sink
from alerts.sinks import record_id, request_for
from framewatch import apikeys, deadletter, httpapi, kafkaio, metrics, records, redisio, scope
from framewatch.errors import RecordDecodeError
from framewatch.failures import Failures
from framewatch.httpapi import TENANT, HttpError
from framewatch.metrics import RECORDS_IN, observe_lag, stage_registry
from framewatch.offsets import Offsets
from framewatch.settings import Settings
from framewatch.tasks import cancel_and_wait

_REG = stage_registry("alerts")  # this stage's /metrics only (core metrics join there)

log = logging.getLogger(__name__)
STAGE = "alerts"
ONCALL = "*"  # the caller of an on-call key (no tenant is named "*": tenants are ids)
TOPIC_OF = {
    "alert": "alerts",
    "enforcement": "enforcement",
    "decision": "decisions",
    "review": "reviews",
}

DUPLICATES = Counter(
    "framewatch_alerts_duplicates_total",
    "deliveries skipped: already sent",
    ["sink"],
    registry=_REG,
)
FOLDED = Counter(
    "framewatch_alerts_folded_total", "alerts folded into an open page (rate limit)", registry=_REG
)
UNROUTED = Counter(
    "framewatch_alerts_unrouted_total", "records no route matched", ["type"], registry=_REG
)
ESCALATED = Counter(
    "framewatch_alerts_escalated_total", "re-sends to a next tier", ["route"], registry=_REG
)
REDIS_WAITS = Counter(
    "framewatch_alerts_redis_waits_total",
    "Redis calls retried because Redis was unreachable",
    registry=_REG,
)
REDIS_WAITING = Gauge(
    "framewatch_alerts_redis_waiting", "1 while the router waits for Redis", registry=_REG
)


class WaitForRedis(Retry):
    """Retry every Redis call until Redis answers, with capped backoff, and say so in metrics.

    The de-dup marks and the fold keys live in Redis: delivering without them would page twice,
    and crashing drops the router for everyone. So the router waits (offsets stay uncommitted)."""

    waiting = False

    def __init__(self, cap_s: float = 2.0) -> None:
        super().__init__(ExponentialBackoff(cap=cap_s, base=0.1), retries=-1)

    async def call_with_retry(self, do: Any, fail: Any, *args: Any, **kw: Any) -> Any:
        async def failed(error: Exception, *rest: Any) -> Any:
            REDIS_WAITS.inc()
            if not WaitForRedis.waiting:  # log once per outage
                log.warning("Redis unreachable (%s); waiting for it, nothing is dropped", error)
            WaitForRedis.waiting = True
            REDIS_WAITING.set(1)
            res = fail(error, *rest)
            return await res if asyncio.iscoroutine(res) else res

        result = await super().call_with_retry(do, failed, *args, **kw)
        if WaitForRedis.waiting:
            log.info("Redis is back")
            WaitForRedis.waiting = False
            REDIS_WAITING.set(0)
        return result


class Router:
    def __init__(self, settings: Settings, routing: Routing) -> None:
        self.s, self.cfg, self.routing = settings, settings.alerts, routing
        # a blocking pool: many records in flight wait for a connection instead of failing
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.redis_url.get_secret_value(),
            max_connections=self.cfg.max_in_flight + 16,
            timeout=settings.redis_pool_wait_s,
            retry=WaitForRedis(),
            **redisio.pool_options(settings),
        )
        self.redis = aioredis.Redis.from_pool(pool)
        self.deliverer = Deliverer(self.cfg)
        init_series(routing.sinks)
        metrics.init_series(STAGE, topics_in=[settings.topics.name(TOPIC_OF[t]) for t in TOPIC_OF],
                            dead_letter_reasons=("unexpected_type", "delivery_failed"))  # fmt: skip
        self.producer = kafkaio.producer(settings)
        self.http_port: int | None = None
        self._runner: web.AppRunner | None = None
        self.lanes: dict[str, lanes.Lane] = {}
        self.failures = Failures(
            STAGE,
            settings.dead_letters,
            lambda dead: deadletter.produce(self.producer, self.s, dead),
        )
        self._background: set[asyncio.Task[None]] = set()

    def k(self, *parts: str) -> str:
        return redisio.key(self.s, "alerts", *parts)

    # ---------------------------------------------------------------- delivery of one record

    async def deliver(
        self,
        sink: Sink,
        rec: Routable,
        *,
        tier: int = 0,
        folded: int = 0,
        dedup: bool = True,
        action: str | None = None,
    ) -> Outcome:
        kind = action or getattr(rec, "kind", "trigger")
        mark = self.k("sent", sink.name, rec.TYPE, record_id(rec), kind, str(tier))
        if dedup and await self.redis.exists(mark):
            DUPLICATES.labels(sink=sink.name).inc()
            log.info("already delivered to %s, skipped", sink.name, extra={"id": record_id(rec)})
            return Outcome(True, 0)
        body, headers = request_for(
            sink, rec, self.cfg.evidence_url, tier=tier, folded=folded, action=action
        )
        out = await self.deliverer.send(sink, body, headers)
        if out.ok:
            if dedup:
                await self.redis.set(mark, b"1", ex=self.cfg.dedup_ttl_s)
            raised = getattr(rec, "raised_at", None) or getattr(rec, "issued_at", None)
            raised = raised or getattr(rec, "decided_at", time.time())
            LATENCY.labels(sink=sink.name).observe(max(0.0, time.time() - raised))
        return out

    async def _fold(self, a: records.Alert) -> bool:
        """Rate limit per stream/account: True when this alert is folded into an open page."""
        if self.cfg.rate_window_s <= 0 or a.test or a.kind != "trigger":
            return False
        key = self.k("fold", scope.key(a.tenant, a.stream_id, a.account_id))
        me = f"{a.incident_id}|{int(a.red_line)}"
        ms = int(self.cfg.rate_window_s * 1000)
        if await self.redis.set(key, me, nx=True, px=ms):
            return False
        first = (await self.redis.get(key) or b"").decode()
        if first.split("|")[0] == a.incident_id or (a.red_line and not first.endswith("|1")):
            return False  # a replay of the first page, or red-line never hides behind a lesser one
        await self.redis.sadd(key + ":n", a.incident_id)
        await self.redis.pexpire(key + ":n", ms)
        FOLDED.inc()
        log.info("folded into %s", first.split("|")[0], extra={"incident_id": a.incident_id})
        return True

    async def handle(self, msg: ConsumerRecord) -> list[asyncio.Future[Outcome]]:
        """Decode, route and queue one record on its sinks' lanes; the futures finish when
        each sink has it (or it was dead-lettered). Poison records are dead-lettered here."""
        RECORDS_IN.labels(stage=STAGE, topic=msg.topic).inc()
        futs = await self.failures.handle(msg, _routable, lambda rec: self.dispatch(rec, msg))
        return futs or []

    async def route(self, rec: Routable, msg: Any = None) -> list[Outcome]:
        """Route one record and wait until every sink has it (or it was dead-lettered)."""
        return list(await asyncio.gather(*await self.dispatch(rec, msg)))

    async def dispatch(self, rec: Routable, msg: Any = None) -> list[asyncio.Future[Outcome]]:
        routes = self.routing.routes_for(rec)
        if not routes:
            UNROUTED.labels(type=rec.TYPE).inc()
            return []
        if isinstance(rec, records.Alert) and await self._fold(rec):
            return []
        if isinstance(rec, records.Alert):  # before paging: an ack right after the page finds it
            await self._track(rec, routes)
        key = (rec.TYPE, _order_key(rec))
        red = bool(getattr(rec, "red_line", False))
        futs = []
        for name in dict.fromkeys(s for r in routes for s in r.sinks):
            sink = self.routing.sinks[name]
            j = lanes.job(key, red, functools.partial(self._deliver_or_dead, sink, rec, msg))
            self._lane(name).put(j)
            futs.append(j.done)
        return futs

    def _lane(self, sink: str) -> lanes.Lane:
        if sink not in self.lanes:
            self.lanes[sink] = lanes.Lane(sink, self.cfg.max_in_flight)
        return self.lanes[sink]

    async def _deliver_or_dead(self, sink: Sink, rec: Routable, msg: Any) -> Outcome:
        out = await self.deliver(sink, rec)
        if not out.ok:
            log.error("delivery to %s failed for good: %s", sink.name, out.error)
            await self.failures.dead(
                msg, "delivery_failed", f"sink {sink.name}: {out.error} ({out.attempts} attempts)"
            )
        return out

    # ---------------------------------------------------------------- incidents + escalation

    async def _track(self, a: records.Alert, routes: list[Route]) -> None:
        if a.test:
            return
        if a.kind == "resolve":
            await self.redis.srem(self.k("open"), a.incident_id)
            await self.redis.set(self.k("ack", a.incident_id), b"resolved", ex=self.cfg.dedup_ttl_s)
        else:
            await self.redis.sadd(self.k("open"), a.incident_id)
            # whose incident it is: a tenant's API key may acknowledge only its own
            await self.redis.set(self.k("tenant", a.incident_id), a.tenant,
                                 ex=self.cfg.dedup_ttl_s)  # fmt: skip
            if a.red_line:
                await self.redis.set(
                    self.k("incident", a.incident_id), records.encode(a), ex=self.cfg.dedup_ttl_s
                )
                due = time.time() + self.cfg.escalate_after_s
                for r in routes:
                    if r.escalation:
                        await self.redis.zadd(
                            self.k("escalations"), {f"{a.incident_id}|{r.name}|1": due}, nx=True
                        )
        OPEN_INCIDENTS.set(await self.redis.scard(self.k("open")))

    async def escalate_due(self) -> int:
        """Re-send unacknowledged red-line alerts whose time is up to their next tier."""
        zkey, sent = self.k("escalations"), 0
        for raw in await self.redis.zrangebyscore(zkey, "-inf", time.time()):
            member = raw.decode()
            incident, route_name, tier_s = member.rsplit("|", 2)
            tier = int(tier_s)
            blob = await self.redis.get(self.k("incident", incident))
            if await self.redis.exists(self.k("ack", incident)) or blob is None:
                await self.redis.zrem(zkey, member)
                continue
            try:
                route = self.routing.route(route_name)
            except Exception:
                await self.redis.zrem(zkey, member)
                continue
            alert = records.decode(blob, records.Alert)
            a0 = alert
            fold_key = self.k("fold", scope.key(a0.tenant, a0.stream_id, a0.account_id)) + ":n"
            folded = int(await self.redis.scard(fold_key))
            names = route.escalation[tier - 1]
            outs = await asyncio.gather(
                *(
                    self.deliver(self.routing.sinks[n], alert, tier=tier, folded=folded)
                    for n in names
                )
            )
            for n, out in zip(names, outs, strict=True):
                if not out.ok:
                    dead = deadletter.build(
                        STAGE,
                        "delivery_failed",
                        f"escalation tier {tier} sink {n}: {out.error}",
                        payload=blob,
                    )
                    await deadletter.send(self.producer, self.s, dead)  # cut to fit there
            ESCALATED.labels(route=route_name).inc()
            log.warning("escalated to tier %d (%s)", tier, ", ".join(names),
                        extra={"incident_id": incident})  # fmt: skip
            if tier < len(route.escalation):
                nxt = f"{incident}|{route_name}|{tier + 1}"
                await self.redis.zadd(zkey, {nxt: time.time() + self.cfg.escalate_after_s})
            await self.redis.zrem(zkey, member)
            sent += 1
        return sent

    async def _escalation_loop(self) -> None:
        while True:
            try:
                await self.escalate_due()
            except Exception:
                log.exception("escalation check failed; retrying")
            await asyncio.sleep(self.cfg.escalation_check_s)

    async def _ack_caller(self, request: web.Request) -> str | None:
        """ONCALL for an on-call key, a tenant for a tenant's API key, None when neither."""
        key = apikeys.bearer(request.headers.get("Authorization"))
        if key is None:
            return None
        got = apikeys.digest(key)  # every configured digest is compared: no early exit
        if sum(hmac.compare_digest(got, d) for d in self.cfg.oncall_keys_sha256):
            return ONCALL
        return await apikeys.tenant_of(self.s, self.redis, key)

    async def _ack(self, request: web.Request) -> web.Response:
        incident = request.match_info["id"]
        caller = request[TENANT]
        by = httpapi.ident(request.query["by"], "by") if "by" in request.query else ""
        absent = HttpError(404, "not_found", f"no open incident {incident}")
        red_line = await self.redis.exists(self.k("incident", incident))  # kept for red lines
        if not red_line and not await self.redis.sismember(self.k("open"), incident):
            raise absent
        if caller != ONCALL:
            owner = await self.redis.get(self.k("tenant", incident))
            if owner is None or owner.decode() != caller:  # another tenant's reads as absent
                raise absent
            if red_line:  # the platform must not silence the pages about its own red lines
                raise HttpError(
                    403,
                    "oncall_only",
                    f"incident {incident} is a red line: only an on-call key acknowledges it "
                    "(alerts.oncall_keys_sha256); its escalation goes on",
                )
        await self.redis.set(self.k("ack", incident), by or b"1", ex=self.cfg.dedup_ttl_s)
        log.info("acknowledged by %s (%s)", by or "someone",
                 "on-call" if caller == ONCALL else f"tenant {caller}",
                 extra={"incident_id": incident})  # fmt: skip
        task = asyncio.create_task(self._forward_ack(incident))  # PagerDuty stops paging too
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return web.json_response(Acknowledged(incident_id=incident, acknowledged=True).model_dump())

    async def _forward_ack(self, incident: str) -> None:
        """Acknowledge the incident in every PagerDuty sink its page went to (or would escalate
        to), off the request: the on-call person's ack answers at once, PagerDuty may retry."""
        blob = await self.redis.get(self.k("incident", incident))
        if blob is None:
            return
        alert = records.decode(blob, records.Alert)
        names: set[str] = set()
        for r in self.routing.routes_for(alert):
            names.update(r.sinks, *r.escalation)
        pd = [self.routing.sinks[n] for n in sorted(names)
              if self.routing.sinks[n].type == "pagerduty"]  # fmt: skip
        outs = await asyncio.gather(*(self.deliver(s, alert, action="acknowledge") for s in pd))
        for sink, out in zip(pd, outs, strict=True):
            if not out.ok:
                error = f"acknowledge to sink {sink.name}: {out.error}"
                dead = deadletter.build(STAGE, "delivery_failed", error, payload=blob)
                await deadletter.send(self.producer, self.s, dead)

    async def start_http(self) -> None:
        app = web.Application(
            middlewares=[
                httpapi.middleware(
                    auth=self._ack_caller,
                    unauthorized="send 'Authorization: Bearer' with an on-call key (`framewatch "
                    "alerts oncall-key`) or the incident tenant's API key (`framewatch apikeys "
                    "add`)",
                )
            ]
        )
        doc = openapi()
        app.router.add_post("/v1/alerts/{id}/ack", self._ack)
        app.router.add_get("/healthz", lambda _r: web.json_response(Healthy(ok=True).model_dump()))
        app.router.add_get("/openapi.json", lambda _r: web.json_response(doc))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.cfg.http_host, self.cfg.http_port)
        await site.start()
        self.http_port = self._runner.addresses[0][1]
        log.info(
            "ack endpoint on http://%s:%d/v1/alerts/{id}/ack", self.cfg.http_host, self.http_port
        )

    # ---------------------------------------------------------------- the consume loop

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        topics = [self.s.topics.name(TOPIC_OF[t]) for t in sorted(self.routing.wanted_types())]
        # deliveries run in the lanes and the loop keeps polling; the long interval covers a
        # record whose routing waits on Redis (the router waits for Redis, never skips it)
        c = self.cfg
        budget_s = c.max_attempts * (c.backoff_max_s + c.request_timeout_s) + c.breaker_reset_s
        consumer = kafkaio.consumer(
            self.s,
            *topics,
            group_id=c.group_id,
            max_poll_interval_ms=int(max(300.0, budget_s + 60) * 1000),
        )
        offsets = Offsets()
        paused = False
        async with self.deliverer:
            await self.producer.start()
            await consumer.start()
            await self.start_http()
            OPEN_INCIDENTS.set(await self.redis.scard(self.k("open")))
            esc = asyncio.create_task(self._escalation_loop())
            log.info("routing %s to %d sink(s)", ", ".join(topics), len(self.routing.sinks))
            try:
                while not stop.is_set():
                    # a lane that cannot deliver holds back only its records' commit; past
                    # max_pending open records the router stops reading until sinks catch up
                    full = offsets.open_count() >= c.max_pending
                    if full != paused:
                        (consumer.pause if full else consumer.resume)(*consumer.assignment())
                        paused = full
                        log.warning("%d records wait for a sink: %s reading", offsets.open_count(),
                                    "pausing" if full else "resuming")  # fmt: skip
                    batch = await consumer.getmany(timeout_ms=300, max_records=500)
                    await observe_lag("alerts", consumer, self.s.metrics.lag_interval_s)
                    offsets.retain(consumer.assignment())
                    for tp, msgs in batch.items():
                        for m in msgs:
                            offsets.read(tp, m.offset)
                            _when_done(await self.handle(m), offsets, tp, m.offset)
                    points = offsets.due(consumer.assignment())
                    if not points:
                        continue
                    try:
                        await consumer.commit(points)
                        offsets.committed(points)
                    except KafkaError as exc:  # rebalanced meanwhile, or no coordinator:
                        # these records are re-read and the Redis marks stop double pages
                        log.warning("offsets not committed (%s); records will be re-read", exc)
            finally:
                await cancel_and_wait([esc], what="escalation loop")
                for lane in self.lanes.values():
                    await lane.close()
                self.lanes.clear()
                if self._runner:
                    await self._runner.cleanup()
                await consumer.stop()
                await self.producer.stop()
                await self.redis.aclose()


def _routable(value: Any) -> Routable:
    rec = records.decode(value)
    if not isinstance(
        rec, records.Alert | records.Enforcement | records.Decision | records.ReviewOutcome
    ):
        raise RecordDecodeError("unexpected_type", f"a {rec.TYPE} record is not routed")
    return rec


def _order_key(rec: Routable) -> str:
    """Deliveries with the same key keep their order on a sink (a trigger, then its resolve)."""
    if isinstance(rec, records.Alert):
        return rec.incident_id
    if isinstance(rec, records.Enforcement):
        return rec.account_id
    return rec.stream_id


def _when_done(futs: list[asyncio.Future[Outcome]], offsets: Offsets, tp: Any, off: int) -> None:
    """Mark the record handled once every sink has it (at once when it has no sink)."""
    if not futs:
        offsets.done(tp, off)
        return
    both = asyncio.gather(*futs, return_exceptions=True)
    both.add_done_callback(lambda _f: offsets.done(tp, off))
