"""A store written by the release before events (schema 3: an outbox of encoded deliver_sm)
is migrated on open, and what waited in its outbox reaches the tenant, oldest first, once it
binds; each answered deliver_sm leaves the store."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from encoding.constants import EsmClass
from encoding.pdu import BindReceiver, DeliverSm, encode_pdu
from routing.sqlite.schema import MIGRATIONS
from tests.conftest import make_config
from tests.rawclient import RawClient
from tests.waiting import wait_until

if TYPE_CHECKING:
    from tests.conftest import GatewayThread


def _schema_3_store(path: Path, texts: list[str]) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.executescript("BEGIN;" + ";".join(MIGRATIONS[:3]) + ";PRAGMA user_version = 3;"
                           "COMMIT;")
        for n, text in enumerate(texts, start=1):
            pdu = DeliverSm(source_addr="447700900123", destination_addr="DEMO",
                            esm_class=EsmClass.TYPE_DELIVERY_RECEIPT,
                            short_message=text.encode())
            conn.execute("INSERT INTO outbox VALUES (?, 'demo', 'receipt', ?, ?, ?, 0, 0)",
                         (n, encode_pdu(pdu), str(n), float(n)))
        conn.commit()
    finally:
        conn.close()


def test_an_old_outbox_is_delivered_after_the_upgrade(
        tmp_path: Path, gateway_factory: Callable[..., GatewayThread]) -> None:
    texts = [f"id:{n} stat:DELIVRD (stored by the old release)" for n in range(1, 6)]
    _schema_3_store(tmp_path / "smsc.db", texts)
    gw = gateway_factory(make_config(tmp_path))
    client = RawClient(gw.port)
    try:
        client.bind(cls=BindReceiver, expect_ok=True)
        got: list[str] = []
        for _ in range(len(texts)):
            pdu = client.read_pdu(timeout=10.0)
            assert isinstance(pdu, DeliverSm), pdu
            got.append(pdu.short_message.decode())
            client.sock.sendall(encode_pdu(pdu.response()))
        assert got == texts
        wait_until(lambda: gw.run(lambda: gw.gateway.store.count("events")) == 0, 10.0,
                   "the answered deliver_sm leave the store")
    finally:
        client.close()
