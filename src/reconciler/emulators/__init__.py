"""Faithful local servers of each platform's connector API (``reconcile emulate TYPE``)."""
from .base import EmulatorConfig, RunningEmulator, build, serve_forever

TYPES = ("airweave", "nango", "airstore", "aimable", "connectors-api")

__all__ = ["EmulatorConfig", "RunningEmulator", "TYPES", "build", "serve_forever"]
