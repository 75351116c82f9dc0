"""Tenant side: the SMPP server tenants bind to, delivery to tenants, metrics, the app."""

from .listeners import Listener, ListenError

__all__ = ["ListenError", "Listener"]
