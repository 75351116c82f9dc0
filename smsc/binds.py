"""Binds of tenant connections: who may bind, how a hashed password is checked without
stalling the loop, and what a config reload does to the binds that are open.

SMPP 3.4 section 4.1: a bind is answered once, with ESME_ROK and our system_id, or with the
status ``auth.check_bind`` decides. Before any password check, an address banned for
guessing (``bans.Bans``) gets ESME_RBINDFAIL. A ``password_hash`` that was not checked good
before is checked in a thread (``passwords.Verifier``): meanwhile the connection's reading
is paused and the PDUs that came after the bind are held, then handled in order through
``replay`` once the bind is answered. Failed guesses (ESME_RINVSYSID, ESME_RINVPASWD) count
toward a ban of the source address.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from config import GatewayConfig, TenantConfig
from encoding.constants import CommandStatus, status_name
from encoding.pdu import Pdu
from encoding.session import Event
from esme import Connection

from .auth import BIND_TYPE_NAMES, check_bind
from .bans import Bans
from .passwords import Verifier
from .registry import Binding, Registry

__all__ = ["BindDesk"]

log = logging.getLogger("smsc.tenant")
S = CommandStatus
_SYSTEM_ID = "smsc"
_GUESSES = frozenset({S.ESME_RINVSYSID, S.ESME_RINVPASWD})  # failures the ban table counts
# Password checks queued or running beyond this: a bind needing one is refused at once
# (ESME_RBINDFAIL; the client retries), so a flood of binds cannot queue without bound.
_MAX_WAITING_CHECKS = 256


class BindDesk:
    """Binds and unbinds of every tenant connection; one per gateway (in ``TenantHandler``)."""

    def __init__(self, config: GatewayConfig, registry: Registry, *,
                 accepting: Callable[[], bool], respond: Callable[[Connection, Pdu], None],
                 replay: Callable[[Connection, list[Event]], None],
                 on_bound: Callable[[str], None], wall: Callable[[], float] = time.time,
                 bans: Bans | None = None, verifier: Verifier | None = None) -> None:
        self.config = config
        self.tenants: Mapping[str, TenantConfig] = {t.system_id: t for t in config.tenants}
        self.registry = registry
        self.accepting = accepting
        self.respond = respond
        self.replay = replay  # handles the PDUs held while a bind was checked
        self.on_bound = on_bound  # a receiving bind is up: deliver what waits
        self.wall = wall
        self.bans = bans if bans is not None else Bans(config.auth)
        self.verifier = verifier if verifier is not None else Verifier()
        # Connections whose bind waits on a password check, with the events that came after
        # the bind: handled, in order, once the bind is answered.
        self._checking: dict[Connection, list[Event]] = {}
        self._checks: set[asyncio.Task[bool]] = set()

    def held(self, conn: Connection) -> list[Event] | None:
        """Where events of ``conn`` wait while its bind is checked (None: not waiting)."""
        return self._checking.get(conn) if self._checking else None

    def closed(self, conn: Connection, reason: str) -> None:
        self._checking.pop(conn, None)
        self.unregister(conn, reason)

    def bind(self, conn: Connection, pdu: Any, now: float) -> None:
        """A bind: refused at once from a banned address (before any password check);
        a ``password_hash`` not checked good before is checked in a thread, with this
        connection's later PDUs held (and its reading paused) until the bind is answered."""
        if isinstance(conn.context, Binding):  # a second bind sent before the first's answer
            self.respond(conn, pdu.response(S.ESME_RALYBND))
            return
        peer_ip = conn.peer.rsplit(":", 1)[0]
        if self.bans.banned_for(peer_ip, now) > 0:
            log.debug("bind refused: %s from %s: address banned", pdu.system_id or "-",
                      conn.peer)
            self.respond(conn, pdu.response(S.ESME_RBINDFAIL))
            return
        tenant = self.tenants.get(pdu.system_id)
        stored = tenant.password_hash if tenant is not None else None
        if stored is None or not self.accepting():
            self._answer_bind(conn, pdu, now, None)
        elif self.verifier.cached(stored, pdu.password):
            self._answer_bind(conn, pdu, now, True)
        elif self.verifier.waiting >= _MAX_WAITING_CHECKS:
            log.warning("bind refused: %s from %s: %d password checks already waiting",
                        pdu.system_id, conn.peer, self.verifier.waiting)
            self.respond(conn, pdu.response(S.ESME_RBINDFAIL))
        else:
            self._checking[conn] = []
            if conn.transport is not None:
                conn.transport.pause_reading()
            task = conn.loop.create_task(self.verifier.verify(stored, pdu.password))
            self._checks.add(task)
            task.add_done_callback(functools.partial(self._checked, conn, pdu, stored))

    def _checked(self, conn: Connection, pdu: Any, stored: str, task: asyncio.Task[bool]
                 ) -> None:
        """A password check ended: answer the bind, then what came after it."""
        self._checks.discard(task)
        held = self._checking.pop(conn, None)
        if held is None or conn.session.closed:  # the connection went meanwhile
            return
        ok = not task.cancelled() and task.exception() is None and task.result()
        tenant = self.tenants.get(pdu.system_id)  # a reload may have changed the hash
        self._answer_bind(conn, pdu, self.wall(),
                          ok and tenant is not None and tenant.password_hash == stored)
        if conn.transport is not None and conn.writable:
            conn.transport.resume_reading()
        if held:
            self.replay(conn, held)

    def _answer_bind(self, conn: Connection, pdu: Any, now: float,
                     password_ok: bool | None) -> None:
        """Decide and answer a bind; ``password_ok`` None: ``check_bind`` checks it."""
        system_id = pdu.system_id
        peer_ip = conn.peer.rsplit(":", 1)[0]
        status = (S.ESME_RBINDFAIL if not self.accepting() else
                  check_bind(self.tenants, pdu.command_id, system_id, pdu.password,
                             peer_ip, self.registry.everywhere(system_id), tls=conn.tls,
                             password_ok=password_ok))
        tlvs: dict[str | int, Any] = ({"sc_interface_version": 0x34}
                                      if pdu.interface_version >= 0x34 else {})
        if status in _GUESSES:
            self.bans.failure(peer_ip, "smpp", now)
        if status:
            log.info("bind refused: %s as %s from %s: %s", system_id or "-",
                     BIND_TYPE_NAMES[pdu.command_id], conn.peer, status_name(status))
            self.respond(conn, pdu.response(status))
            return
        tenant = self.tenants[system_id]
        binding = Binding(tenant, BIND_TYPE_NAMES[pdu.command_id], pdu.interface_version)
        conn.context = binding
        session = conn.session
        session.reconfigure(msgspec.structs.replace(
            session.config, inbound_window=tenant.window,
            response_timeout_s=tenant.deliver_timeout_s, window=tenant.deliver_window))
        self.respond(conn, pdu.response(system_id=_SYSTEM_ID, tlvs=tlvs))
        self.registry.add(conn)
        log.info("bind: %s as %s from %s (interface 0x%02X)", system_id, binding.bind_type,
                 conn.peer, pdu.interface_version)
        if binding.receives:
            conn.loop.call_soon(self.on_bound, system_id)

    def unregister(self, conn: Connection, reason: str) -> None:
        if isinstance(conn.context, Binding):
            binding = conn.context
            self.registry.remove(conn)
            conn.context = None
            log.info("unbind: %s (%s) from %s: %s", binding.tenant.system_id,
                     binding.bind_type, conn.peer, reason)

    def reconfigure(self, config: GatewayConfig) -> list[str]:
        """A reloaded config: new binds are checked against it. An open bind of a removed
        tenant, or of one that may no longer bind this way (bind type, ``allowed_ips``,
        ``tls_only``, no password any more), is unbound cleanly; the others go on with the
        tenant's new settings (window, deliver_window, limits). A changed password leaves
        open binds alone: it is checked at bind time. Returns what it did, for the log."""
        self.config = config
        self.tenants = {t.system_id: t for t in config.tenants}
        notes: list[str] = []
        for conn in list(self.registry.all()):
            binding: Binding = conn.context
            tenant = self.tenants.get(binding.tenant.system_id)
            if tenant is None or not tenant.binds or binding.bind_type not in tenant.bind_types \
                    or not tenant.allows(conn.peer.rsplit(":", 1)[0]) \
                    or (tenant.tls_only and not conn.tls):
                notes.append(f"bind of {binding.tenant.system_id} from {conn.peer} unbound: "
                             + ("tenant removed" if tenant is None else "no longer allowed"))
                if conn.session.bound:
                    conn.unbind()
                else:
                    conn.close()
                continue
            if tenant is not binding.tenant:
                binding.tenant = tenant
                session = conn.session
                session.reconfigure(msgspec.structs.replace(
                    session.config, inbound_window=tenant.window,
                    response_timeout_s=tenant.deliver_timeout_s, window=tenant.deliver_window))
        return notes
