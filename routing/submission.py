"""``Submission``: one message a tenant asks the gateway to send, whichever door it used.

A door (SMPP today, HTTP later) turns its request into submissions; the admission service
decides on each one and turns the accepted ones into ``Message`` records. The fields are
SMPP 3.4's where SMPP defines them (section 4.4.1), because the operator side speaks SMPP;
``door`` and ``reference`` say where it came from and what the caller calls it.
"""

from __future__ import annotations

from enum import StrEnum

from .model import Content

__all__ = ["Door", "Submission"]


class Door(StrEnum):
    SMPP = "smpp"
    HTTP = "http"


class Submission(Content, gc=False, kw_only=True):
    """A message asked for, before admission decides on it."""

    replace_if_present_flag: int = 0
    sm_default_msg_id: int = 0
    door: Door = Door.SMPP
    reference: str = ""  # the caller's own reference
    request_id: str = ""  # the door's request it belongs to (HTTP)
    report_url: str = ""  # events of this message go here instead of the tenant's webhook
    interface_version: int = 0x34  # the SMPP version the caller speaks (status choice)
    # The message's own quiet hours, "HH:MM-HH:MM" (HTTP quiet_hours); "" = the tenant's.
    quiet_hours: str = ""
