"""The composition root: builds the gateway from config and runs it.

The only module that wires the tenant side (``smsc``) to the operator side (``esme``) and
chooses the storage engine: the SQLite store and group commit behind the repository
interfaces (record, work queue, event queue), the lifecycle, the admission service, the
router, the scheduler, consent, templates, tracked links and analytics, the ESME pool, the
SMPP door (tenant listener, delivery), the HTTP door and the webhook channel, metrics.
``Gateway`` is what the CLI runs and what integration tests start in-process.

``start`` is a list of steps (store, listeners, pool last), each registering its undo in a
``Teardown`` first; a failed or cancelled start undoes itself, ``stop`` undoes the rest in
reverse. A port that cannot be bound is a ``ListenError`` naming its config key.
"""

from __future__ import annotations

import asyncio
import logging
import time

from litestar.handlers import HTTPRouteHandler
from prometheus_client.registry import CollectorRegistry

from config import GatewayConfig
from esme import Pool
from routing.admission import Admission
from routing.analytics import Analytics
from routing.channels import webhook_queue
from routing.consent import Consent
from routing.events import TenantEvent
from routing.inbound import Inbound
from routing.keywords import Keywords
from routing.lifecycle import IllegalTransition, Lifecycle
from routing.nats.cluster import Cluster
from routing.quiet import deferred_until
from routing.router import Router
from routing.schedule import Scheduler
from routing.sqlite import SqliteConsent, SqliteEventQueue, SqliteRecord, Store
from routing.sqlite.links import SqliteLinks
from routing.sqlite.rollups import SqliteAnalytics
from routing.sqlite.schedules import SqliteScheduleBook
from routing.sqlite.templates import SqliteTemplates
from routing.templates import TemplateBook
from routing.workqueue import MemoryWorkQueue

from .analytics_metrics import AnalyticsCollector
from .bans import Bans
from .delivery import Delivery
from .fdlimit import log_ceiling, plan_connection_ceiling
from .flood import FloodCollector, FloodStats
from .gauges import register_gauges
from .http import HttpApi, HttpServer, SendService, counted
from .http.links import LinkDesk
from .http.optouts import optout_handlers
from .http.preview import PreviewService, preview_routes
from .http.server import public_url
from .http.templates import template_routes
from .listeners import ListenError
from .metrics import GatewayCollector, Metrics
from .metrics_http import MetricsEndpoint
from .recovery import recover
from .registry import Registry
from .reload import ReloadError, apply_config
from .server import TenantListener
from .storage import control_elsewhere, follow_cluster, open_engine, share_binds
from .teardown import Teardown
from .tenant import TenantHandler
from .tls import ServerTls, TlsListener, http_tls, listen_tls
from .webhooks import WebhookSender

__all__ = ["Gateway", "ListenError"]

log = logging.getLogger("smsc")
_PURGE_EVERY_S = 60.0
# Receipt timeouts are checked this often at most (a quarter of the shortest timeout if that
# is shorter). A sweep reads one batch on the loop (a few milliseconds: the batch's rows and
# one segment lookup each); while sweeps find full batches, the next one follows shortly.
_RECEIPT_SWEEP_S = 60.0
_RECEIPT_SWEEP_BATCH = 200
_RECEIPT_SWEEP_NEXT_S = 0.05


class Gateway:
    """One gateway process: ``await start()``, then ``await stop()``."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self.prometheus = CollectorRegistry()
        self.prometheus.register(GatewayCollector(self.metrics))
        self.flood = FloodStats()  # the tenant listener's accept errors and evictions
        self.prometheus.register(FloodCollector(self.flood))
        # Rollups into the pending group commit (routing.analytics); its counters at /metrics.
        self.analytics = Analytics(lambda: self.committer.pending.rollups)
        self.prometheus.register(AnalyticsCollector(self.analytics))
        self.store = Store(config.store.path, synchronous=config.store.synchronous.upper())
        self.cluster: Cluster | None = None  # ``[cluster]``: this node's part (smsc.storage)
        # Failed authentications per address, for both doors; outlives reloads.
        self.bans = Bans(config.auth)
        self.port = 0  # the plain SMPP port ([listen]); 0 when it is off
        self.tls_port = 0  # the SMPP-over-TLS port ([listen_tls]); 0 when it is off
        # Server TLS (``reload`` makes new handshakes use new certificates).
        self.smpp_tls: ServerTls | None = None
        self.http_tls: ServerTls | None = None
        self.metrics_port = 0
        self.http_port = 0
        self._purge: asyncio.TimerHandle | None = None
        self._receipt_sweep: asyncio.TimerHandle | asyncio.Handle | None = None
        self._receipt_task: asyncio.Task[None] | None = None
        self._steps: Teardown | None = None  # what start() did, while started
        self.illegal_count = 0
        self.illegal_transitions: list[IllegalTransition] = []  # the first 100, for tests
        self.wall = time.time
        self.reloads = {"applied": 0, "refused": 0}
        self._reloading: asyncio.Lock | None = None

    async def start(self) -> None:
        """Start the gateway. The steps, in order (``stop`` undoes them in reverse):

        1. the store: open it (``StoreError``), then start its group committer;
        2. the wiring, without I/O (record, queues, lifecycle, router, admission, tenant
           handler, the pool object, gauges), and the recovery of accepted messages into
           the operators' work queues;
        3. the listeners, each raising ``ListenError`` with its config key when its port
           cannot be bound: the metrics endpoint ``[metrics]`` (first, so it is the last to
           close and scrapes see the drain), then the SMPP door ``[listen]`` and its TLS
           port ``[listen_tls]`` (each when enabled), then the HTTP door ``[http]`` (when
           enabled; HTTPS with ``[http] cert``);
        4. the housekeeping timers (event retention, receipt timeouts), and the webhook
           channel's pooled client (events already waiting start going out);
        5. last, the ESME pool binds out to the operators: only a gateway that listens on
           every port it must ever takes a bind slot at an operator's SMSC.

        When a step fails, or ``start`` is cancelled (SIGTERM while starting), what was
        started is undone in reverse order (pool, timers, listeners, committer, store) and
        the exception is raised again: nothing is left running or open.
        """
        if self._steps is not None:
            raise RuntimeError("gateway already started")
        steps = self._steps = Teardown()
        try:
            await self._start(steps)
        except BaseException:
            self._steps = None
            await steps.unwind(grace=0.5)
            raise
        if self.port:
            log.info("listening for tenants on %s:%d", self.config.listen.host, self.port)
        if self.tls_port and self.config.listen_tls is not None:
            log.info("listening for tenants over TLS on %s:%d", self.config.listen_tls.host,
                     self.tls_port)
        log_ceiling(self.ceiling)

    async def _start(self, steps: Teardown) -> None:
        loop = asyncio.get_running_loop()
        self.loop = loop
        cfg = self.config
        # Server certificates first: material that does not load (TlsError) fails the start
        # before anything is opened.
        tls = cfg.listen_tls
        self.smpp_tls = listen_tls(tls) if tls is not None and tls.enabled else None
        self.http_tls = http_tls(cfg.http) if cfg.http.enabled else None
        steps.push("store", self.store.close)
        self.store.open()
        # SQLite, or a node of a cluster (smsc.storage) that delivers its tenants' events:
        # a tenant's deliver_sm from a node with its receiver bind, its webhook events (their
        # own queue, routing.channels) from any node
        self.committer, self.cluster = await open_engine(
            cfg, self.store, steps, on_commit=self.metrics.on_commit,
            wanted=lambda: self.registry.receiving() | {
                webhook_queue(t.system_id) for t in self.config.tenants if t.webhook_url})
        self._wire(loop)
        steps.stop_intake_with(self.admission.stop_accepting)
        if self.cluster is not None:
            follow_cluster(self.cluster, self, steps)  # it takes over what others left
            control = await control_elsewhere(self.cluster, self)
            self.handler.elsewhere, self.http_api.elsewhere = control, control.cancel
        elif n := recover(self.record, self.router):
            log.info("recovered %d accepted messages from the store", n)
        # Soft open-file limit raised; tenant connections kept within what is left.
        self.ceiling = plan_connection_ceiling(cfg)
        self.listener.set_ceiling(self.ceiling.connections)
        if cfg.metrics.enabled:
            endpoint = MetricsEndpoint(self.prometheus, cfg.metrics.host, cfg.metrics.port)
            self.metrics_port = await steps.listen("[metrics]", cfg.metrics.host,
                                                   cfg.metrics.port, endpoint)
        if cfg.listen.enabled:
            self.port = await steps.listen("[listen]", cfg.listen.host, cfg.listen.port,
                                           self.listener,
                                           stop_accepting=self.listener.stop_accepting)
        if self.smpp_tls is not None and cfg.listen_tls is not None:
            tls = cfg.listen_tls
            self.tls_port = await steps.listen(
                "[listen_tls]", tls.host, tls.port,
                TlsListener(self.listener, tls, self.smpp_tls),
                stop_accepting=self.listener.stop_accepting)
        if cfg.http.enabled:
            self.http_port = await steps.listen("[http]", cfg.http.host, cfg.http.port,
                                                self.http)
        steps.push("timers", self._stop_timers)
        self._purge = loop.call_later(_PURGE_EVERY_S, self._purge_events)
        steps.push("scheduler", self.scheduler.stop)
        self.scheduler.start()  # what became due while stopped goes at once
        steps.push("webhooks", self.webhooks.stop)
        await self.webhooks.start()
        if self.pool is not None:
            self._receipt_sweep = loop.call_soon(self._sweep_receipt_timeouts)
            steps.push("ESME pool", self.pool.stop)
            await self.pool.start()

    def _wire(self, loop: asyncio.AbstractEventLoop) -> None:
        """Build the parts over the open store (no I/O, nothing started)."""
        cfg = self.config
        self.record = SqliteRecord(self.store, self.committer)
        self.events = SqliteEventQueue(self.store, self.committer, loop, wall=self.wall)
        self.work = MemoryWorkQueue(op.name for op in cfg.operators)
        self.lifecycle = Lifecycle(self.record, self._illegal, self.analytics)
        self.router = Router(cfg, self.record, self.work, self.events, self.lifecycle,
                             wall=self.wall)
        self.admission = Admission(cfg, self.record, self.router)
        self._wire_consent()
        # Scheduled messages (send_at, schedule_delivery_time) wait in the store; the
        # scheduler releases them and cancels or replaces those that have not left.
        self.scheduler = Scheduler(SqliteScheduleBook(self.store), self.record,
                                   self.lifecycle, self.router, wall=self.wall)
        self.admission.held = self.scheduler.held
        self.admission.analytics = self.analytics
        self.registry = Registry()
        self.delivery = Delivery(self.events, self.registry,
                                 {t.system_id: t for t in cfg.tenants})
        self.pool = self._make_pool()
        self.handler = TenantHandler(cfg, self.admission, self.record, self.scheduler,
                                     self.registry, self.delivery, self.metrics, wall=self.wall,
                                     bans=self.bans)
        self.listener = TenantListener(cfg.listen, self.handler, loop, stats=self.flood)
        self.sending = SendService(cfg, self.admission, self.record, wall=self.wall)
        self.sending.consent = self.consent
        link_desk = self._wire_links()
        self.http_api = HttpApi(cfg, self.sending, self.record, self.events,
                                self.scheduler.cancel,
                                wall=self.wall, accepting=lambda: self.admission.accepting,
                                bans=self.bans, links=link_desk,
                                routes=[*self._wire_templates(), *optout_handlers(
                                    self.consent, self.router.publish, wall=self.wall)])
        self.http_api.analytics = SqliteAnalytics(lambda: self.store.reader,
                                                  self.analytics.regions)
        self.http = HttpServer(counted(self.http_api.app, self.metrics.http_response),
                               cfg.http.host, cfg.http.port,
                               self.http_tls.context if self.http_tls is not None else None)
        self.webhooks = WebhookSender(self.events, list(cfg.tenants), cfg.http, wall=self.wall)
        register_gauges(self)

    def _wire_consent(self) -> None:
        """Opt-outs (routing.consent): the index loaded from the store, asked by admission
        for every submission of both doors (and by preview: ``gateway.consent``)."""
        self.consent = Consent(SqliteConsent(self.store, self.committer))
        self.admission.consent = self.router.consent = self.consent

    def _wire_templates(self) -> list[HTTPRouteHandler]:
        """Stored templates (all in memory, loaded once; writes ride the group commit) for
        sending and preview, and their routes (/v1/templates, POST /v1/messages/preview)."""
        self.templates = TemplateBook(SqliteTemplates(self.store, self.committer))
        self.templates.load()
        self.sending.templates = self.templates
        self.preview = PreviewService(self.templates, self.sending.operator_for,
                                      wall=self.wall, deferred_until=deferred_until,
                                      opted_out=self.consent.opted_out,
                                      link_base=lambda: self.sending.link_base())
        return [*template_routes(self.templates, self.wall), *preview_routes(self.preview)]

    def _wire_links(self) -> LinkDesk:
        """Tracked links (track_links): kept with their messages, short links under
        ``public_url`` (the bound HTTP port when the config says 0), clicks published
        through the router's channels as ``message.clicked``."""
        links = SqliteLinks(self.store, self.committer)
        self.sending.links = links
        self.sending.link_base = lambda: public_url(self.config.http, self.http_port or None)
        self.link_desk = LinkDesk(links, self.record,
                                  lambda tenant, events, now: self.router.channels.publish(
                                      tenant, events, now), wall=self.wall)
        return self.link_desk

    def _illegal(self, exc: IllegalTransition) -> None:
        """Production: a refused status change is a bug or an unrecognised duplicate; log
        and count it (tests assert the count stays 0)."""
        self.illegal_count += 1
        if len(self.illegal_transitions) < 100:
            self.illegal_transitions.append(exc)
        log.error("lifecycle: %s", exc)

    def _make_pool(self) -> Pool | None:
        """The ESME pool toward operators (None when no operator is configured)."""
        if not self.config.operators:
            return None
        self.inbound = inbound = Inbound(self.record, self.router, self.config.tenants)
        inbound.analytics = self.analytics
        inbound.keywords = Keywords(self.consent, self.record, self.router)
        pool = Pool(self.config, self.router, self.work, inbound, self.record,
                    count=self.metrics.operator_event, wall=self.wall)
        self.metrics.gauge("smsc_operator_binds", "Bound binds per operator", "operator",
                           pool.bound_count)
        return pool

    def _purge_events(self) -> None:
        """Retention: drop events nobody took in time (through the group commit)."""
        self.events.purge(self.wall() - self.config.store.retention_s)
        self.record.forget_answers(self.wall() - self.config.http.idempotency_s)
        self._purge = self.loop.call_later(_PURGE_EVERY_S, self._purge_events)

    def _sweep_receipt_timeouts(self) -> None:
        self._receipt_task = self.loop.create_task(self._receipt_sweep_once())

    async def _receipt_sweep_once(self) -> None:
        """Operators' receipt timeouts: overdue SUBMITTED messages become UNKNOWN."""
        # The sweep reads statuses from the store: first make every outcome decided so far
        # durable (what arrives meanwhile is still pending, and the router skips it).
        await self.committer.flush()
        timed_out = self.router.receipt_timeouts(self.wall(), _RECEIPT_SWEEP_BATCH)
        for operator, count in timed_out.items():
            self.metrics.operator_event(operator, "receipt_timeout", count)
            log.warning("%s: %d messages got no receipt within receipt_timeout_s: UNKNOWN",
                        operator, count)
        n = max(timed_out.values(), default=0)
        timeouts = [op.receipt_timeout_s for op in self.config.operators if op.receipt_timeout_s]
        every = min([_RECEIPT_SWEEP_S] + [max(0.1, t / 4) for t in timeouts])
        self._receipt_sweep = self.loop.call_later(
            _RECEIPT_SWEEP_NEXT_S if n >= _RECEIPT_SWEEP_BATCH else every,
            self._sweep_receipt_timeouts)

    async def reload(self, new: GatewayConfig) -> list[str]:
        """Apply a reloaded config (SIGHUP, ``smsc reload``); returns what changed, one line
        each. Nothing changes when it raises ``ReloadError`` (certificates or keys that do
        not load). Keys fixed for the life of the process keep their running values (one
        note each). Tenants, operators and routes take effect at once for what comes next
        and for what waits; operators' binds are replaced in the background, one by one
        (``self.pool.settled``). Reloads run one at a time."""
        if self._steps is None:
            raise RuntimeError("gateway not started")
        if self._reloading is None:
            self._reloading = asyncio.Lock()
        async with self._reloading:
            try:
                return await apply_config(self, new)
            except ReloadError:
                self.reloads["refused"] += 1
                raise

    async def start_pool(self) -> None:
        """The first operator came with a reload: the pool starts now (stopped with the
        rest by ``stop``)."""
        self.pool = pool = self._make_pool()
        assert self._steps is not None and pool is not None
        if self.cluster is not None:
            share_binds(self.cluster, pool, self.metrics)
        self._steps.push("ESME pool", pool.stop)
        await pool.start()
        self._receipt_sweep = self.loop.call_soon(self._sweep_receipt_timeouts)

    async def put_event(self, tenant: str, event: TenantEvent) -> None:
        """Publish one event for ``tenant`` and wait until it is durable (tests, tooling)."""
        durable = self.router.publish(tenant, [event], self.wall())
        assert isinstance(durable, asyncio.Future)
        await durable

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop: the reverse of ``start``, after intake has stopped.

        1. intake: admission refuses new submissions and the SMPP door stops accepting
           connections (bound tenants stay bound for now, so receipts that arrive while the
           operators unbind still reach them);
        2. the ESME pool unbinds from the operators (binds still connecting or backing off
           are cancelled at once);
        3. the timers;
        4. the webhook channel (requests in flight are cancelled; their events stay in the
           store), the HTTP door (requests in flight finish within ``timeout``), the SMPP
           door unbinds its tenants (``timeout``) and drops what is left;
        5. the metrics endpoint;
        6. last, the store: the group committer flushes and stops, the store closes.

        Idempotent; after a failed or cancelled ``start`` (which undid itself) a no-op.
        """
        steps, self._steps = self._steps, None
        if steps is None:
            return
        await steps.unwind(grace=timeout)
        log.info("stopped")

    async def _stop_timers(self) -> None:
        """Cancel the purge and receipt-sweep timers; wait for a sweep that is running."""
        for handle in (self._purge, self._receipt_sweep):
            if handle is not None:
                handle.cancel()
        self._purge = self._receipt_sweep = None
        task, self._receipt_task = self._receipt_task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=1.0)
