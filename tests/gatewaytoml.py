"""The part every subprocess gateway config of the tests shares: every door on 127.0.0.1 with
a free port (0; the port is read back from the banner), the store under the test's folder,
no metrics endpoint. Tests append their own ``[[tenants]]``, ``[[operators]]`` and routes."""

from __future__ import annotations

from pathlib import Path

__all__ = ["loopback_sections"]


def loopback_sections(tmp_path: Path) -> str:
    return (
        "[listen]\nhost = \"127.0.0.1\"\nport = 0\n\n"
        f"[store]\npath = \"{tmp_path / 'smsc.db'}\"\n\n"
        "[metrics]\nenabled = false\n\n"
        "[http]\nhost = \"127.0.0.1\"\nport = 0\n\n"
    )
