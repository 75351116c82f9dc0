"""Typed configuration of the gateway: frozen, strict msgspec Structs loaded from TOML.

``load_gateway_config(path)`` is the one entry point that reads files (house habit 8);
everything else receives its Struct by constructor. Errors are ``ConfigError``, one line
``"FILE: KEY: REASON"``. ``default_config_path()`` points at the bundled demo config.
"""

from __future__ import annotations

from .errors import ConfigError
from .fields import BindType, TlsVersion
from .gateway import (
    AuthConfig,
    ClusterConfig,
    GatewayConfig,
    HttpConfig,
    IncludeFile,
    ListenConfig,
    MetricsConfig,
    OperatorConfig,
    RouteConfig,
    StoreConfig,
    TlsListenConfig,
)
from .loader import default_config_path, load_gateway_config
from .simulator import SimulatorConfig, load_simulator_config
from .tenant import QuietHoursConfig, TenantConfig

__all__ = [
    "AuthConfig",
    "BindType",
    "ClusterConfig",
    "ConfigError",
    "GatewayConfig",
    "HttpConfig",
    "IncludeFile",
    "ListenConfig",
    "MetricsConfig",
    "OperatorConfig",
    "QuietHoursConfig",
    "RouteConfig",
    "StoreConfig",
    "TenantConfig",
    "TlsListenConfig",
    "TlsVersion",
    "SimulatorConfig",
    "default_config_path",
    "load_gateway_config",
    "load_simulator_config",
]
