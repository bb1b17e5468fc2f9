"""The manifest language: YAML files -> a validated, typed desired state (:func:`load`)."""
from __future__ import annotations

from .loader import load

__all__ = ["load"]
