"""Stored message templates per tenant: a book kept in memory over the store.

Templates are few (at most ``MAX_PER_TENANT`` per tenant) and read on every send that names
one, so the book holds them all in memory, loaded once at start; writes change the book at
once and ride the group commit (``TemplateStore.put`` / ``drop`` return its ``Durable``), and
a write whose commit fails is undone in the book. Rendering is not done here: a template's
content is rendered exactly like a message's ``content`` (``{{name}}`` per recipient).
"""

from __future__ import annotations

import re
from typing import Final, Protocol

import msgspec

from .repository import Durable

__all__ = ["StoredTemplate", "TemplateStore", "TemplateBook", "TemplateLimit",
           "NAME_PATTERN", "MAX_PER_TENANT", "valid_name"]

# Short and plain: it appears in URLs (/v1/templates/{name}) and in request bodies.
NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_NAME: Final = re.compile(NAME_PATTERN)
MAX_PER_TENANT: Final = 1000


def valid_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None and name.isascii()


class StoredTemplate(msgspec.Struct, frozen=True, gc=False):
    tenant: str
    name: str
    content: str
    created_at: float
    updated_at: float


class TemplateStore(Protocol):
    """Where the book's templates live (``routing.sqlite.templates.SqliteTemplates``)."""

    def load(self) -> list[StoredTemplate]: ...

    def put(self, t: StoredTemplate) -> Durable: ...

    def drop(self, tenant: str, name: str) -> Durable: ...


class TemplateLimit(Exception):
    """A tenant already has ``MAX_PER_TENANT`` templates."""


class TemplateBook:
    """Every tenant's templates, in memory; ``load`` once the store is open."""

    def __init__(self, store: TemplateStore) -> None:
        self._store = store
        self._by_tenant: dict[str, dict[str, StoredTemplate]] = {}

    def load(self) -> None:
        self._by_tenant = {}
        for t in self._store.load():
            self._by_tenant.setdefault(t.tenant, {})[t.name] = t

    # --- reads ------------------------------------------------------------------------------

    def get(self, tenant: str, name: str) -> StoredTemplate | None:
        return self._by_tenant.get(tenant, {}).get(name)

    def content(self, tenant: str, name: str) -> str | None:
        t = self.get(tenant, name)
        return t.content if t is not None else None

    def of(self, tenant: str) -> list[StoredTemplate]:
        """A tenant's templates by name."""
        return sorted(self._by_tenant.get(tenant, {}).values(), key=lambda t: t.name)

    # --- writes -----------------------------------------------------------------------------

    def put(self, tenant: str, name: str, content: str, now: float
            ) -> tuple[StoredTemplate, bool, Durable]:
        """Create or replace ``name``: the template, whether it is new, and the commit."""
        book = self._by_tenant.setdefault(tenant, {})
        old = book.get(name)
        if old is None and len(book) >= MAX_PER_TENANT:
            raise TemplateLimit(f"an account has at most {MAX_PER_TENANT} templates")
        t = StoredTemplate(tenant, name, content, old.created_at if old else now, now)
        book[name] = t
        durable = self._store.put(t)
        durable.add_done_callback(lambda _: self._undo(durable, tenant, name, t, old))
        return t, old is None, durable

    def delete(self, tenant: str, name: str) -> Durable | None:
        """Forget ``name`` (None when there is no such template)."""
        old = self._by_tenant.get(tenant, {}).pop(name, None)
        if old is None:
            return None
        durable = self._store.drop(tenant, name)
        durable.add_done_callback(lambda _: self._undo(durable, tenant, name, None, old))
        return durable

    def _undo(self, durable: Durable, tenant: str, name: str, wrote: StoredTemplate | None,
              old: StoredTemplate | None) -> None:
        """A failed commit: put back what was there, unless a later write replaced it."""
        if durable.exception() is None:
            return
        book = self._by_tenant.setdefault(tenant, {})
        if book.get(name) is not wrote:
            return
        if old is None:
            book.pop(name, None)
        else:
            book[name] = old
