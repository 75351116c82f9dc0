"""Tenant side: the SMPP server tenants bind to, delivery to tenants, metrics, the app."""

__all__: list[str] = []
