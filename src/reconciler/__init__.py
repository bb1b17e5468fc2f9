"""connector-reconciler: Terraform-style plan/apply for data-source connectors.

The Python API (see :mod:`reconciler.api`)::

    from reconciler import load, plan, apply
    result = plan(load("connectors/"))
    report = apply(result)
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["ApplyReport", "PlanResult", "__version__", "apply", "load", "plan"]


def __getattr__(name: str):  # PEP 562: `reconcile validate` need not import the engine and httpx
    if name in __all__:
        from . import api

        # bound here, after api's imports: `reconciler.plan` is the function, as it always was,
        # although importing api imported the subpackage of the same name
        globals().update({n: getattr(api, n) for n in __all__ if n != "__version__"})
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
