"""Quiet hours end to end (issue 12): a message due inside them, in the recipient's time
zone, is stored ``scheduled`` with ``send_at`` = their end and does not reach the operator;
over HTTP with the message's own ``quiet_hours``, over SMPP with the tenant's.

Deterministic without a fake clock: the window is chosen around the real current time in
Europe/London (the zone of +44 numbers), from an hour ago to two hours ahead, so "now" is
inside it and the release is two hours after the current minute. A control message in the
same test (no window, or a number with no known zone) reaches the simulator, so waiting for
it bounds how long we look for the held one. The release itself runs on a shifted clock
(the gateway's ``wall``): a few seconds before 08:00 in London, the end of 21:00-08:00.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from config import GatewayConfig, QuietHoursConfig
from smsc.app import Gateway
from tests.conftest import GatewayThread
from tests.httpkit import api_client, api_tenant, message_body, post_json, wait_message_status
from tests.integration.e2e_support import (
    Stack,
    gateway_config,
    operator,
    operator_bound,
    sent_texts,
    smpplib_tenant,
    wait_until,
)
from tests.loopthread import LoopThread

pytestmark = pytest.mark.timeout(90)

TOKEN = "tok_quiet_0123456789abcdef0123456789abcd"
LONDON = ZoneInfo("Europe/London")


def window_around_now() -> tuple[str, str, float]:
    """``start`` an hour ago and ``end`` two hours ahead on London's wall clock (minutes),
    and the instant ``end`` comes."""
    local = datetime.now(LONDON).replace(second=0, microsecond=0)
    end = local + timedelta(hours=2)
    return ((local - timedelta(hours=1)).strftime("%H:%M"), end.strftime("%H:%M"),
            local.timestamp() + 7200)


def rfc3339(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def held(client: Any, message_id: str, release: float) -> None:
    status = wait_message_status(client, message_id, "scheduled")
    assert status["send_at"] is not None, status
    assert rfc3339(status["send_at"]) == pytest.approx(release, abs=0.001), status


def test_an_http_message_due_in_its_quiet_hours_is_held_until_they_end(stack: Stack) -> None:
    start, end, release = window_around_now()
    sim = stack.sim()
    gw = stack.gateway([operator("A", sim.port)], tenants=(api_tenant("demo", TOKEN),))
    body: dict[str, Any] = {"messages": [
        message_body(["+447700900123"], "at night",
                     quiet_hours={"start": start, "end": end})["messages"][0],
        message_body(["+447700900124"], "any time")["messages"][0]]}
    with api_client(gw.gateway.http_port, TOKEN) as client:
        r = post_json(client, body)
        assert r.status_code == 200, r.text
        quiet_id, plain_id = (e["id"] for e in r.json()["messages"])
        wait_message_status(client, plain_id, "delivered")
        held(client, quiet_id, release)
    assert sent_texts(sim.received()) == ["any time"]


def test_an_smpp_message_gets_the_tenant_s_quiet_hours(stack: Stack) -> None:
    start, end, release = window_around_now()
    sim = stack.sim()
    tenant = api_tenant("demo", TOKEN, password="demo",
                        quiet_hours=QuietHoursConfig(start=start, end=end))
    gw = stack.gateway([operator("A", sim.port)], tenants=(tenant,))
    with smpplib_tenant(gw.gateway.port) as smpp, \
            api_client(gw.gateway.http_port, TOKEN) as client:
        seqs = [smpp.submit(b"at night", destination_addr="447700900125"),
                # no known zone (no such country code): no quiet hours
                smpp.submit(b"any time", destination_addr="999123456")]
        quiet_id, plain_id = smpp.ids(seqs)
        wait_until(lambda: sent_texts(sim.received()) == ["any time"], 15.0,
                   "the control message at the simulator")
        held(client, quiet_id, release)
        assert client.get(f"/v1/messages/{plain_id}").json()["send_at"] is None
    assert sent_texts(sim.received()) == ["any time"]


class ClockedGateway(GatewayThread):
    """A gateway whose wall clock is ``wall`` (set before it starts: every part takes it)."""

    def __init__(self, config: GatewayConfig, wall: Any) -> None:
        LoopThread.__init__(self, "gateway-loop")
        self.config = config
        self.gateway = Gateway(config)
        self.gateway.wall = wall
        self.call(self.gateway.start())


def test_a_held_message_leaves_when_quiet_hours_end(stack: Stack) -> None:
    shift = [0.0]
    sim = stack.sim()
    gw = ClockedGateway(gateway_config(stack.tmp_path, [operator("A", sim.port)], tenants=(
        api_tenant("demo", TOKEN, quiet_hours=QuietHoursConfig(start="21:00", end="08:00")),)),
        lambda: time.time() + shift[0])
    stack.gateways.append(gw)
    wait_until(lambda: operator_bound(gw, "A"), 10.0, "gateway bound to its operator")
    # the next 08:00 in London, and the gateway's clock moved to five seconds before it
    local = datetime.now(LONDON)
    eight = local.replace(hour=8, minute=0, second=0, microsecond=0)
    if eight <= local:
        eight += timedelta(days=1)
    shift[0] = eight.timestamp() - 5.0 - time.time()
    with api_client(gw.gateway.http_port, TOKEN) as client:
        r = post_json(client, message_body(["+447700900126"], "good morning"))
        assert r.status_code == 200, r.text
        (entry,) = r.json()["messages"]
        status = client.get(f"/v1/messages/{entry['id']}").json()
        assert status["status"] == "scheduled", status
        assert rfc3339(status["send_at"]) == eight.timestamp()
        assert sim.received() == []
        status = wait_message_status(client, entry["id"], "delivered", timeout=30.0)
        assert rfc3339(status["sent_at"]) >= eight.timestamp()
    assert sent_texts(sim.received()) == ["good morning"]
    assert gw.run(lambda: list(gw.gateway.illegal_transitions)) == []
