"""Quiet hours as configured and asked for: ``[[tenants]] quiet_hours``, the HTTP
``quiet_hours`` field (smsc.http.translate puts it on the submission), and the rule
admission applies (routing.quiet.quiet_until), with a fake clock.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from config import ConfigError, QuietHoursConfig, TenantConfig, load_gateway_config
from routing.model import Message
from routing.quiet import Window, deferred_until, quiet_until, window_for
from smsc.http.models import SendRequest
from smsc.http.translate import Plan, Planned, plan_request

TO = "+447700900100"  # Europe/London by prefix
NIGHT_CFG = QuietHoursConfig(start="21:00", end="08:00")
QUIET = TenantConfig(system_id="acme", quiet_hours=NIGHT_CFG)
PLAIN = TenantConfig(system_id="acme")


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=UTC).timestamp()


def plan(body: dict[str, Any], tenant: TenantConfig = PLAIN) -> Plan:
    req = msgspec.json.decode(json.dumps(body), type=SendRequest)
    return plan_request(req, tenant, utc(2026, 6, 15, 12), operator_for=lambda d: None)


def message(created: float, to: str = "447700900100") -> Message:
    return Message(id="1", tenant="acme", source_addr="ACME", destination_addr=to,
                   created_at=created)


# --- config --------------------------------------------------------------------------------


def test_tenant_quiet_hours_load_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "smsc.toml"
    path.write_text('[[tenants]]\nsystem_id = "acme"\n'
                    'quiet_hours = {start = "21:00", end = "08:00"}\n')
    cfg = load_gateway_config(str(path))
    assert cfg.tenants[0].quiet_hours == NIGHT_CFG
    assert TenantConfig(system_id="x").quiet_hours is None


@pytest.mark.parametrize(("table", "reason"), [
    ('{start = "21:00", end = "8:00"}', "quiet_hours.end"),
    ('{start = "24:00", end = "08:00"}', "quiet_hours.start"),
    ('{start = "21:00"}', "end"),
    ('{start = "21:00", end = "21:00"}', "must differ from start"),
    ('{start = "21:00", end = "08:00", zone = "UTC"}', "zone"),
])
def test_bad_tenant_quiet_hours_are_one_line_errors(tmp_path: Path, table: str,
                                                    reason: str) -> None:
    path = tmp_path / "smsc.toml"
    path.write_text(f'[[tenants]]\nsystem_id = "acme"\nquiet_hours = {table}\n')
    with pytest.raises(ConfigError, match=reason) as exc:
        load_gateway_config(str(path))
    assert "\n" not in str(exc.value)


def test_the_example_config_documents_quiet_hours() -> None:
    text = (Path(__file__).parents[2] / "config/examples/smsc.toml").read_text()
    assert '# quiet_hours = {start = "21:00", end = "08:00"}' in text


# --- the HTTP field ------------------------------------------------------------------------


def entries(p: Plan) -> list[Planned]:
    assert p.problems == [] and p.forbidden == [], p.problems
    return [e for e in p.entries if isinstance(e, Planned)]


def test_a_message_s_quiet_hours_ride_on_its_submission() -> None:
    body = {"messages": [{"recipients": [TO], "content": "x",
                          "quiet_hours": {"start": "22:30", "end": "07:15"}}]}
    (e,) = entries(plan(body))
    assert e.submission.quiet_hours == "22:30-07:15"
    (e,) = entries(plan({"messages": [{"recipients": [TO], "content": "x"}]}, QUIET))
    assert e.submission.quiet_hours == ""  # the tenant's apply at admission


def test_message_globals_give_quiet_hours_to_every_message() -> None:
    body = {"message_globals": {"quiet_hours": {"start": "20:00", "end": "09:00"}},
            "messages": [{"recipients": [TO], "content": "a"},
                         {"recipients": [TO], "content": "b",
                          "quiet_hours": {"start": "23:00", "end": "06:00"}}]}
    assert [e.submission.quiet_hours for e in entries(plan(body))] == [
        "20:00-09:00", "23:00-06:00"]


def test_an_empty_window_is_refused_with_its_pointer() -> None:
    body = {"messages": [{"recipients": [TO], "content": "x",
                          "quiet_hours": {"start": "21:00", "end": "21:00"}}]}
    p = plan(body)
    assert [(x.pointer, x.code) for x in p.problems] == [
        ("/messages/0/quiet_hours/end", "invalid_value")]


# --- the admission rule --------------------------------------------------------------------


def test_window_for_prefers_the_message_s_own() -> None:
    assert window_for(None) is None
    assert window_for(NIGHT_CFG) == Window(21 * 60, 8 * 60)
    assert window_for(NIGHT_CFG, "23:00-06:00") == Window(23 * 60, 6 * 60)
    assert window_for(None, "23:00-06:00") == Window(23 * 60, 6 * 60)


def test_quiet_until_holds_a_message_due_at_night_until_the_local_morning() -> None:
    night = utc(2026, 6, 15, 22)  # 23:00 BST
    assert quiet_until(message(night), QUIET, "", 0.0) == utc(2026, 6, 16, 7)  # 08:00 BST
    assert quiet_until(message(night), PLAIN, "", 0.0) == 0.0  # no quiet hours
    assert quiet_until(message(night), PLAIN, "21:00-08:00", 0.0) == utc(2026, 6, 16, 7)
    # the message's own window replaces the tenant's: 23:00 BST is open in 00:00-06:00
    assert quiet_until(message(night), QUIET, "00:00-06:00", 0.0) == 0.0
    noon = utc(2026, 6, 15, 11)
    assert quiet_until(message(noon), QUIET, "", 0.0) == 0.0


def test_quiet_until_starts_from_the_asked_for_time() -> None:
    noon = utc(2026, 6, 15, 11)
    later = utc(2026, 6, 15, 21)  # send_at 22:00 BST: inside quiet hours
    assert quiet_until(message(noon), QUIET, "", later) == utc(2026, 6, 16, 7)
    asked = utc(2026, 6, 15, 15)  # 16:00 BST: open, the asked-for time stands
    assert quiet_until(message(noon), QUIET, "", asked) == asked


def test_quiet_until_in_a_multi_zone_region_and_an_unknown_one() -> None:
    june = utc(2026, 6, 15, 21)  # Sydney 07:00, Perth 05:00, Cocos 03:30
    assert quiet_until(message(june, "61412345678"), QUIET, "", 0.0) == utc(2026, 6, 16, 1, 30)
    assert quiet_until(message(june, "999123456"), QUIET, "", 0.0) == 0.0


def test_preview_s_deferred_until_says_when_quiet_hours_would_release() -> None:
    night, noon = utc(2026, 6, 15, 22), utc(2026, 6, 15, 11)
    assert deferred_until(QUIET, "447700900100", None, night) == utc(2026, 6, 16, 7)
    assert deferred_until(QUIET, "447700900100", None, noon) is None
    assert deferred_until(PLAIN, "447700900100", None, night) is None
    assert deferred_until(PLAIN, "447700900100", ("21:00", "08:00"), night) == utc(2026, 6, 16, 7)
