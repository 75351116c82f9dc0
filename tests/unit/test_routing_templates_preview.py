"""Stored templates (the in-memory book over the store) and the preview's arithmetic.

The book: writes change it at once and ride the store; a failed commit puts back what was
there; the SQLite side keeps created_at on replace and applies the last write of a name in a
batch. The arithmetic is the dispatcher's split (``routing.cost`` over ``build_parts``):
GSM-7 160 / 153 with extension characters counting two, UCS-2 70 / 67 with an emoji taking
two units, and the characters that force UCS-2 named with their positions. The preview
service fills, encodes and asks its opt-out and quiet-hours hooks per recipient.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from config import OperatorConfig, TenantConfig
from encoding.text import encode_text
from routing.cost import cost_of, ucs2_forcing
from routing.sqlite import Ops, Store
from routing.sqlite.templates import SqliteTemplates
from routing.templates import MAX_PER_TENANT, StoredTemplate, TemplateBook, TemplateLimit
from smsc.http.models import PreviewRequest
from smsc.http.preview import PreviewService
from smsc.http.problems import ApiError

# --- the book --------------------------------------------------------------------------------


class Done:
    """A Durable already complete (or failed): callbacks run when added."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error

    def add_done_callback(self, fn: Callable[[Any], object], /) -> None:
        fn(self)

    def exception(self) -> BaseException | None:
        return self.error


class FakeStore:
    def __init__(self, rows: list[StoredTemplate] | None = None) -> None:
        self.rows = rows or []
        self.writes: list[tuple[str, ...]] = []
        self.fail = False

    def load(self) -> list[StoredTemplate]:
        return list(self.rows)

    def put(self, t: StoredTemplate) -> Done:
        self.writes.append(("put", t.tenant, t.name, t.content))
        return Done(OSError("disk") if self.fail else None)

    def drop(self, tenant: str, name: str) -> Done:
        self.writes.append(("drop", tenant, name))
        return Done(OSError("disk") if self.fail else None)


def test_book_reads_from_memory_and_writes_through() -> None:
    store = FakeStore([StoredTemplate("acme", "b", "B", 1.0, 1.0),
                       StoredTemplate("acme", "a", "A", 1.0, 2.0),
                       StoredTemplate("other", "a", "X", 1.0, 1.0)])
    book = TemplateBook(store)
    book.load()
    assert [t.name for t in book.of("acme")] == ["a", "b"]
    assert book.content("other", "a") == "X" and book.content("nobody", "a") is None
    t, created, _ = book.put("acme", "a", "A2", 5.0)
    assert (t.created_at, t.updated_at, created) == (1.0, 5.0, False)
    t, created, _ = book.put("acme", "c", "C", 6.0)
    assert (t.created_at, created) == (6.0, True)
    assert book.delete("acme", "b") is not None and book.get("acme", "b") is None
    assert book.delete("acme", "b") is None
    assert store.writes == [("put", "acme", "a", "A2"), ("put", "acme", "c", "C"),
                            ("drop", "acme", "b")]


def test_a_failed_commit_is_undone_in_the_book() -> None:
    store = FakeStore([StoredTemplate("acme", "a", "A", 1.0, 1.0)])
    book = TemplateBook(store)
    book.load()
    store.fail = True
    book.put("acme", "a", "changed", 2.0)
    assert book.content("acme", "a") == "A"
    book.put("acme", "new", "N", 2.0)
    assert book.get("acme", "new") is None
    book.delete("acme", "a")
    assert book.content("acme", "a") == "A"


def test_an_account_has_a_bounded_number_of_templates() -> None:
    book = TemplateBook(FakeStore())
    for i in range(MAX_PER_TENANT):
        book.put("acme", f"t{i}", "x", 1.0)
    with pytest.raises(TemplateLimit):
        book.put("acme", "one-more", "x", 1.0)
    book.put("acme", "t0", "replacing is fine", 2.0)
    book.put("other", "t0", "another account is fine", 2.0)


def test_sqlite_stores_the_last_write_of_a_name_in_a_batch(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db", synchronous="OFF")
    store.open()
    try:
        ops = Ops()
        ops.put_template("acme", "a", "first", 1.0, 1.0)
        ops.put_template("acme", "gone", "x", 1.0, 1.0)
        store.apply(ops)
        ops = Ops()
        ops.put_template("acme", "a", "second", 1.0, 3.0)
        ops.put_template("acme", "b", "B", 3.0, 3.0)
        ops.drop_template("acme", "b")  # the last write of a name in a batch wins
        ops.drop_template("acme", "gone")
        ops.put_template("acme", "gone", "back", 4.0, 4.0)
        assert len(ops) == 3
        store.apply(ops)
        loaded = SqliteTemplates(store, None).load()  # type: ignore[arg-type]
        assert loaded == [StoredTemplate("acme", "a", "second", 1.0, 3.0),
                          StoredTemplate("acme", "gone", "back", 4.0, 4.0)]
    finally:
        store.close()


# --- the arithmetic --------------------------------------------------------------------------


def gsm(text: str, op: OperatorConfig | None = None) -> tuple[int, int, int, int]:
    c = cost_of(encode_text(text, 0), 0, op)
    return c.parts, c.units, c.per_part, c.chars_left


def ucs2(text: str, op: OperatorConfig | None = None) -> tuple[int, int, int, int]:
    c = cost_of(encode_text(text, 8), 8, op)
    return c.parts, c.units, c.per_part, c.chars_left


def test_gsm7_160_then_153_per_part() -> None:
    assert gsm("a" * 160) == (1, 160, 160, 0)
    assert gsm("a" * 161) == (2, 161, 153, 145)
    assert gsm("a" * 306) == (2, 306, 153, 0)
    assert gsm("a" * 307) == (3, 307, 153, 152)


def test_gsm7_extension_characters_count_two() -> None:
    assert gsm("€" * 80) == (1, 160, 160, 0)
    assert gsm("[" * 81) == (2, 162, 153, 143)  # 152 (no pair cut) then 10
    assert gsm("a" + "{" * 80) == (2, 161, 153, 145)  # 153 ends on a whole pair


def test_ucs2_70_then_67_per_part_and_an_emoji_takes_two_units() -> None:
    assert ucs2("д" * 70) == (1, 70, 70, 0)
    assert ucs2("д" * 71) == (2, 71, 67, 63)
    assert ucs2("😀" * 35) == (1, 70, 70, 0)
    assert ucs2("😀" * 34 + "д" * 3) == (2, 71, 67, 62)  # the pair at 66-67 moves on whole


def test_the_operators_split_method_is_used() -> None:
    op = OperatorConfig(name="S", host="h", port=1, system_id="s", password="",
                        split="sar", packed=True)
    assert gsm("a" * 161, op) == (2, 161, 152, 143)
    payload = msgspec.structs.replace(op, split="payload")
    assert gsm("a" * 161, payload) == (2, 161, 153, 145)  # as a handset gets it
    tight = msgspec.structs.replace(op, max_parts=2, split="udh8")
    assert cost_of(encode_text("a" * 400, 0), 0, tight).error == 0x01  # ESME_RINVMSGLEN


def test_characters_that_force_ucs2_are_named_with_positions() -> None:
    assert ucs2_forcing("Hi € [ok] é") == {}  # extension and accented GSM-7 characters
    assert ucs2_forcing("a😀b😀ç—") == {"😀": [1, 3], "ç": [4], "—": [5]}


# --- the preview service ---------------------------------------------------------------------

TENANT = TenantConfig(system_id="acme", password="pw")


def service(**hooks: Any) -> PreviewService:
    book = TemplateBook(FakeStore([StoredTemplate("acme", "hi", "Hi {{name}} 😀", 0, 0)]))
    book.load()
    return PreviewService(book, lambda tenant, to: None, wall=lambda: 1000.0, **hooks)


def request(**fields: Any) -> PreviewRequest:
    return msgspec.convert(fields, PreviewRequest)


def test_preview_renders_a_template_per_recipient_and_asks_the_hooks() -> None:
    asked: list[Any] = []

    def deferred(tenant: TenantConfig, to: str, window: Any, at: float) -> float | None:
        asked.append((tenant.system_id, to, window, at))
        return at + 3600 if to.endswith("2") else None

    s = service(opted_out=lambda tenant, to: to.endswith("1"), deferred_until=deferred)
    got = s.preview(TENANT, request(
        template="hi", vars={"name": "all"},
        recipients=["+447700900001", {"to": "447700900002", "vars": {"name": "Bo"}}],
        quiet_hours={"start": "21:00", "end": "08:00"}))
    assert (got.text, got.encoding, got.parts) == ("Hi all 😀", "ucs2", 1)
    assert [(r.recipient, r.opted_out, r.deferred) for r in got.recipients] == [
        ("+447700900001", True, False), ("+447700900002", False, True)]
    second = got.recipients[1]
    assert second.rendering is not None and second.rendering.text == "Hi Bo 😀"
    assert second.deferred_until is not None and second.deferred_until.timestamp() == 4600.0
    assert asked[0] == ("acme", "447700900001", ("21:00", "08:00"), 1000.0)
    assert got.ucs2_characters[0].code_point == "U+1F600"


def test_preview_without_hooks_says_false_and_null() -> None:
    got = service().preview(TENANT, request(content="x", recipients=["+447700900001"]))
    r = got.recipients[0]
    assert (r.opted_out, r.deferred, r.deferred_until) == (False, False, None)


def test_preview_missing_variable_points_at_the_recipient() -> None:
    with pytest.raises(ApiError) as err:
        service().preview(TENANT, request(template="hi", recipients=[
            {"to": "+447700900001", "vars": {"name": "A"}}, "+447700900002"]))
    assert [(e.pointer, e.code) for e in err.value.errors] == [
        ("/recipients/1", "missing_variable")]


# --- sending with a template (translate.plan_request) ----------------------------------------


def plan_with_templates(body: dict[str, Any]) -> Any:
    from encoding.text import decode_text
    from smsc.http.models import SendRequest
    from smsc.http.translate import Planned, plan_request

    stored = {"hi": "Hi {{name}}, €5 off"}
    p = plan_request(msgspec.convert(body, SendRequest), TENANT, 1000.0,
                     operator_for=lambda to: None, templates=stored.get)
    texts = [decode_text(e.submission.body, e.submission.data_coding)
             for e in p.entries if isinstance(e, Planned)]
    return [(f.pointer, f.code) for f in p.problems], texts


def test_a_template_is_rendered_per_recipient_like_content() -> None:
    problems, texts = plan_with_templates({"messages": [{"template": "hi", "recipients": [
        {"to": "+447700900001", "vars": {"name": "Ann"}},
        {"to": "+447700900002", "vars": {"name": "Bo"}}]}]})
    assert (problems, texts) == ([], ["Hi Ann, €5 off", "Hi Bo, €5 off"])


def test_template_problems_point_at_the_field_or_the_recipient() -> None:
    assert plan_with_templates({"messages": [
        {"template": "nope", "recipients": ["+447700900001"]}]})[0] == [
        ("/messages/0/template", "unknown_template")]
    assert plan_with_templates({"messages": [{"recipients": ["+447700900001"]}],
                                "message_globals": {"template": "nope"}})[0] == [
        ("/message_globals/template", "unknown_template")]
    assert plan_with_templates({"messages": [
        {"template": "hi", "content": "x", "recipients": ["+447700900001"]}]})[0] == [
        ("/messages/0/template", "conflicting_fields")]
    assert plan_with_templates({"messages": [
        {"template": "hi", "recipients": ["+447700900001"]}]})[0] == [
        ("/messages/0/recipients/0", "missing_variable")]
