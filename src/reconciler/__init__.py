"""connector-reconciler: Terraform-style plan/apply for data-source connectors."""
from __future__ import annotations

__version__ = "0.1.0"
