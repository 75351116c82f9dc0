"""The gateway's configuration as frozen, strict msgspec Structs (one per TOML table;
``[[tenants]]`` is ``config.tenant``, the shared field types ``config.fields``).

Every Struct is ``frozen`` (assignment raises), ``forbid_unknown_fields`` (a misspelt key is
an error, never silently ignored) and ``kw_only``. Ranges and patterns live on the fields as
``msgspec.Meta`` constraints, so decoding validates them; the few checks that need more
than one field or the ``ipaddress`` module live in ``__post_init__``, whose reasons are
written ``"field: reason"`` so the loader can name the key. Lists are tuples (immutable).
Cross-table checks (duplicate names, routes naming unknown operators) are in the loader.
Times are in seconds (``*_s``) unless the name says otherwise.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from .fields import (
    FilePath,
    Host,
    Name,
    NonNegative,
    Port,
    Positive,
    Strict,
    SystemId,
    TlsVersion,
)
from .tenant import TenantConfig

__all__ = [
    "AuthConfig",
    "ClusterConfig",
    "GatewayConfig",
    "HttpConfig",
    "IncludeFile",
    "ListenConfig",
    "MetricsConfig",
    "OperatorConfig",
    "RouteConfig",
    "StoreConfig",
    "TlsListenConfig",
]

class ListenConfig(Strict, frozen=True, kw_only=True):
    """``[listen]``: the tenant-facing SMPP listener (plain TCP). Its session settings and
    ``max_connections`` apply to ``[listen_tls]`` too (``max_connections`` counts both)."""

    enabled: bool = True
    host: Host = "127.0.0.1"
    port: Port = 2775
    max_command_length: Annotated[int, Meta(ge=64, le=16_777_216)] = 70_000
    session_init_s: Positive = 30.0
    enquire_link_s: NonNegative = 30.0  # 0 = never send enquire_link
    inactivity_s: NonNegative = 300.0  # 0 = never close an idle session
    response_timeout_s: Positive = 30.0
    max_connections: Annotated[int, Meta(ge=1)] = 10_000


def _check_cert_pair(cert: str, key: str, prefix: str = "") -> None:
    if bool(cert) != bool(key):
        raise ValueError(f"{prefix}{'key' if cert else 'cert'}: required with "
                         f"{prefix}{'cert' if cert else 'key'}")


class TlsListenConfig(Strict, frozen=True, kw_only=True):
    """``[listen_tls]``: the tenant-facing SMPP listener over TLS (3550 is the usual port).

    ``cert`` (PEM chain, server certificate first) and ``key`` are required; with
    ``client_ca`` set, a tenant must present a certificate signed by that CA (PEM bundle).
    """

    enabled: bool = True
    host: Host = "127.0.0.1"
    port: Port = 3550
    cert: FilePath
    key: FilePath
    client_ca: FilePath = ""
    min_version: TlsVersion = "1.2"
    handshake_timeout_s: Positive = 10.0

    def __post_init__(self) -> None:
        if not self.cert:
            raise ValueError("cert: required (PEM file of the server certificate chain)")
        _check_cert_pair(self.cert, self.key)


class AuthConfig(Strict, frozen=True, kw_only=True):
    """``[auth]``: protection against credential guessing, for binds and HTTP tokens.

    A source address with ``max_auth_failures`` failed authentications within
    ``auth_failure_window_s`` is refused before any password check for ``auth_ban_s``.
    ``max_auth_failures = 0`` turns bans off.
    """

    max_auth_failures: Annotated[int, Meta(ge=0)] = 10
    auth_failure_window_s: Positive = 60.0
    auth_ban_s: Positive = 300.0


class StoreConfig(Strict, frozen=True, kw_only=True):
    """``[store]``: the SQLite store and its group-commit writer.

    A relative ``path`` is relative to the directory of the config file (the loader makes
    it absolute); ``":memory:"`` is kept as is.
    """

    path: Annotated[str, Meta(min_length=1)] = "var/smsc.db"
    max_queue: Annotated[int, Meta(ge=1)] = 100_000  # beyond this submits get ESME_RMSGQFUL
    retention_s: NonNegative = 604_800.0  # how long undelivered outbox items are kept
    # "normal": a commit survives the process being killed (SIGKILL, crash) — the promise
    # behind submit_sm_resp. "full": also an OS crash or power loss, at one fsync per group
    # commit (milliseconds on slow disks, so higher submit_sm_resp latency).
    synchronous: Literal["normal", "full"] = "normal"
    # While answers wait on a commit, commit at most once per this interval (normal mode), so
    # a busy gateway writes fewer, larger transactions: the first write after a quiet spell
    # commits at once, later ones wait up to this long. 0 = commit every loop iteration
    # (lowest latency, most CPU and WAL traffic at moderate rates).
    commit_interval_ms: Annotated[float, Meta(ge=0, le=100)] = 1.0


class MetricsConfig(Strict, frozen=True, kw_only=True):
    """``[metrics]``: the Prometheus endpoint."""

    enabled: bool = True
    host: Host = "127.0.0.1"
    port: Port = 9100


class HttpConfig(Strict, frozen=True, kw_only=True):
    """``[http]``: the HTTP API (``docs: http-api.md``), beside the SMPP listener."""

    enabled: bool = True
    host: Host = "127.0.0.1"
    port: Port = 8080
    public_url: str = ""  # base of URLs shown to users; "" = http(s)://host:port
    max_body_bytes: Annotated[int, Meta(ge=1024, le=100_000_000)] = 10_000_000
    max_recipients: Annotated[int, Meta(ge=1, le=100_000)] = 10_000  # per request, in all
    idempotency_s: Annotated[float, Meta(ge=60)] = 86_400.0  # how long a key is kept
    # Webhooks: a request that takes longer than this counts as failed and is retried.
    webhook_timeout_s: Positive = 10.0
    webhook_concurrency: Annotated[int, Meta(ge=1, le=256)] = 8  # requests in flight per URL
    # Give up on an event this long after it was created (kept as failed, listable).
    webhook_retry_for_s: Annotated[float, Meta(ge=0)] = 172_800.0
    # Delays between attempts; the last one repeats until webhook_retry_for_s.
    webhook_retry_s: Annotated[tuple[Positive, ...], Meta(min_length=1)] = (
        5.0, 60.0, 300.0, 1800.0, 7200.0, 18_000.0)
    # HTTPS: with cert and key set the API speaks only TLS (min_version and later).
    cert: FilePath = ""
    key: FilePath = ""
    min_version: TlsVersion = "1.2"
    # https:// webhook endpoints are verified against this CA bundle ("" = system store).
    webhook_ca: FilePath = ""

    def __post_init__(self) -> None:
        _check_cert_pair(self.cert, self.key)


class OperatorConfig(Strict, frozen=True, kw_only=True):
    """``[[operators]]``: one upstream SMSC the gateway binds to as an ESME."""

    name: Name
    host: Host
    port: Annotated[int, Meta(ge=1, le=65535)]
    system_id: SystemId
    # What we send: SMPP 3.4 section 4.1.1, a C-Octet String of 9 octets at most (8 and NUL);
    # the encoder is strict (it would refuse the bind PDU), so the config says it first.
    password: Annotated[str, Meta(max_length=8)]
    system_type: Annotated[str, Meta(max_length=12)] = ""
    bind: Literal["transceiver", "transmitter+receiver"] = "transceiver"
    binds: Annotated[int, Meta(ge=1, le=64)] = 1
    window: Annotated[int, Meta(ge=1, le=1000)] = 10
    tps: NonNegative = 0.0  # 0 = unlimited
    enquire_link_s: NonNegative = 30.0  # 0 = off
    response_timeout_s: Positive = 30.0
    # A message this operator took but sent no final receipt for within this time becomes
    # UNKNOWN, and the tenant gets an UNKNOWN receipt (a later real receipt updates the
    # stored status without a second receipt). 0 = wait for ever.
    receipt_timeout_s: NonNegative = 172_800.0
    reconnect_min_s: Positive = 1.0
    reconnect_max_s: Positive = 60.0
    dcs0: Literal["gsm7", "latin1", "ascii"] = "gsm7"
    packed: bool = False  # GSM 7-bit packed in short_message (rare; most SMSCs want unpacked)
    split: Literal["udh8", "udh16", "sar", "payload"] = "udh8"
    max_parts: Annotated[int, Meta(ge=1, le=255)] = 255
    id_format: Literal["auto", "hex", "decimal", "opaque"] = "auto"
    long_part: Literal["resplit", "refuse"] = "resplit"
    connect_timeout_s: Positive = 10.0  # TCP connect plus TLS handshake
    # TLS toward this operator: verified against ``ca`` (PEM bundle; "" = the system trust
    # store) for the name ``server_hostname`` ("" = ``host``); ``cert``/``key`` are the
    # client certificate the operator handed out. ``verify = false`` is logged at every
    # connect.
    tls: bool = False
    ca: FilePath = ""
    cert: FilePath = ""
    key: FilePath = ""
    server_hostname: str = ""
    verify: bool = True
    min_version: TlsVersion = "1.2"

    def __post_init__(self) -> None:
        _check_cert_pair(self.cert, self.key)
        if not self.tls and (self.ca or self.cert or self.server_hostname or not self.verify):
            raise ValueError("tls: ca, cert, key, server_hostname and verify need tls = true")
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError(
                f"reconnect_max_s: must be >= reconnect_min_s ({self.reconnect_min_s}),"
                f" got {self.reconnect_max_s}"
            )


class RouteConfig(Strict, frozen=True, kw_only=True):
    """``[[routes]]``: destinations starting with ``prefix`` go to ``operators`` in order."""

    prefix: Annotated[str, Meta(pattern=r"^[0-9]*$")] = ""  # "" = default route
    operators: Annotated[tuple[str, ...], Meta(min_length=1)]  # failover order
    tenants: tuple[str, ...] = ()  # tenant system_ids; empty = all tenants


class ClusterConfig(Strict, frozen=True, kw_only=True):
    """``[cluster]``: run as one of several nodes over NATS JetStream (issue 14) instead of
    on this machine's SQLite alone. The NATS servers must run with ``sync_interval: always``
    (JetStream acknowledges before it syncs to disk otherwise): README, "Running a cluster".

    Every node keeps a replica of the shared state in ``[store] path`` (its own file);
    ``node`` names this node in the cluster (unique, and kept across restarts)."""

    engine: Literal["nats"] = "nats"
    servers: Annotated[tuple[str, ...], Meta(min_length=1)]  # nats://host:port, tls://...
    node: Name
    replicas: Annotated[int, Meta(ge=1, le=5)] = 3  # of every stream and bucket
    user: str = ""
    password: str = ""
    token: str = ""
    # TLS toward the servers: verified against ``ca`` ("" = the system trust store), with
    # ``cert``/``key`` as the client certificate when the servers ask for one.
    ca: FilePath = ""
    cert: FilePath = ""
    key: FilePath = ""
    connect_timeout_s: Positive = 5.0
    publish_timeout_s: Positive = 2.0  # a log entry not acknowledged by then is sent again
    lease_ttl_s: Annotated[float, Meta(ge=3, le=60)] = 10.0  # a dead node's leases lapse
    # Pacing of the log's publishes, as [store] commit_interval_ms paces SQLite commits: a
    # batch right after another waits this long. Every batch costs each NATS server an fsync,
    # so fewer, fuller batches answer sooner: at 2,000 msg/s over 5 pairs each, 3 ms gave
    # a median p99 submit_sm_resp of 11.0 ms and 1 ms 12.7 ms, with 0.14 ms less server CPU
    # per message (BENCHMARKS.md, issue 14).
    commit_interval_ms: Annotated[float, Meta(ge=0, le=100)] = 3.0
    # How long the replicated log keeps an entry (0: for ever). Every node's replica holds
    # the whole state; a node away for longer starts from a copy of another node's replica
    # (smsc copy-replica). README, "Running a cluster".
    log_retention_s: Annotated[float, Meta(ge=0)] = 604800.0

    def __post_init__(self) -> None:
        _check_cert_pair(self.cert, self.key)
        if self.user and self.token:
            raise ValueError("token: give either user and password, or a token")


class IncludeFile(Strict, frozen=True, kw_only=True):
    """What a file named by ``include`` may hold."""

    tenants: tuple[TenantConfig, ...] = ()
    operators: tuple[OperatorConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()


class GatewayConfig(Strict, frozen=True, kw_only=True):
    """The whole gateway config; ``config.load_gateway_config`` builds it from TOML.

    ``include`` lists glob patterns (relative to the main file) of files holding more
    ``[[operators]]``/``[[routes]]``/``[[tenants]]``; after loading, their entries are
    merged into the tuples below (main file first, then each pattern's matches in sorted
    order) and ``include`` keeps the patterns as written. ``config_dir`` is set by the
    loader to the absolute directory of the main file ("" when built in code); writing it
    in the file is an error.
    """

    listen: ListenConfig = ListenConfig()
    listen_tls: TlsListenConfig | None = None
    http: HttpConfig = HttpConfig()
    auth: AuthConfig = AuthConfig()
    store: StoreConfig = StoreConfig()
    metrics: MetricsConfig = MetricsConfig()
    cluster: ClusterConfig | None = None  # None: this machine alone, on SQLite
    tenants: tuple[TenantConfig, ...] = ()
    operators: tuple[OperatorConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    include: tuple[str, ...] = ()
    # ``smsc serve`` writes its PID here, for ``smsc reload`` (SIGHUP); "" = none. Relative
    # to the config file's directory.
    pid_file: FilePath = "var/smsc.pid"
    config_dir: str = ""

    @property
    def tls_listening(self) -> bool:
        return self.listen_tls is not None and self.listen_tls.enabled

    def operator(self, name: str) -> OperatorConfig:
        """The operator called ``name`` (KeyError when there is none)."""
        for op in self.operators:
            if op.name == name:
                return op
        raise KeyError(name)

    def tenant(self, system_id: str) -> TenantConfig:
        """The tenant with ``system_id`` (KeyError when there is none)."""
        for tenant in self.tenants:
            if tenant.system_id == system_id:
                return tenant
        raise KeyError(system_id)
