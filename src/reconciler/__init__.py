"""connector-reconciler: Terraform-style plan/apply for data-source connectors.

The Python API (see :mod:`reconciler.api`)::

    from reconciler import load, plan, apply
    result = plan(load("connectors/"))
    report = apply(result)
"""
from __future__ import annotations

__version__ = "0.1.0"

# after __version__: the engine imports it from here
from .api import ApplyReport, PlanResult, apply, load, plan  # noqa: E402

__all__ = ["ApplyReport", "PlanResult", "__version__", "apply", "load", "plan"]
