"""The webhook channel: tenants' events as Standard Webhooks-signed POSTs, durable, retried."""

from .render import render_webhook
from .sender import WebhookSender
from .signing import Signer

__all__ = ["Signer", "WebhookSender", "render_webhook"]
