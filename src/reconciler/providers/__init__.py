"""Provider adapters, one module per platform type, found through :data:`REGISTRY`."""
from __future__ import annotations

import importlib

from .base import Capabilities, ConnectorStatus, Provider, SyncJob

TYPES = ("airweave", "nango", "airstore", "aimable", "connectors-api")


def provider_class(type_name: str) -> type[Provider]:
    """The adapter class for a provider ``type`` (modules are imported on first use)."""
    if type_name not in TYPES:
        raise KeyError(type_name)
    module = importlib.import_module(f".{type_name.replace('-', '_')}", __name__)
    return module.ADAPTER


__all__ = ["Capabilities", "ConnectorStatus", "Provider", "SyncJob", "TYPES", "provider_class"]
