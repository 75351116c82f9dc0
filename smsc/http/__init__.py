"""The HTTP door: JSON API over the same admission, store and lifecycle as SMPP."""

from .api import HttpApi
from .middleware import counted
from .sending import SendService
from .server import HttpServer
from .tokens import hash_token, new_api_key

__all__ = ["HttpApi", "counted", "HttpServer", "SendService", "hash_token", "new_api_key"]
