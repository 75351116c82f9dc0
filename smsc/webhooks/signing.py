"""Standard Webhooks signatures (https://www.standardwebhooks.com, "Signature scheme").

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; the signature is HMAC-SHA256
keyed by the base64-decoded part of the secret after ``whsec_``, sent as ``v1,<base64>``;
with two secrets (rotation) both signatures go, space-separated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["Signer", "secret_key"]


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


class Signer:
    def __init__(self, secrets: tuple[str, ...]) -> None:
        self._keys = [secret_key(s) for s in secrets]

    def headers(self, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        signed = f"{event_id}.{timestamp}.".encode() + body
        signature = " ".join(
            "v1," + base64.b64encode(hmac.new(k, signed, hashlib.sha256).digest()).decode()
            for k in self._keys)
        return {"webhook-id": event_id, "webhook-timestamp": str(timestamp),
                "webhook-signature": signature, "content-type": "application/json"}
