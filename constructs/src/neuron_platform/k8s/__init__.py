"""Typed builders for the Kubernetes objects the platform creates (plain Python).

Each function returns a JSON-ready dict; tests validate them against the Karpenter
CRDs and the Kubernetes OpenAPI schemas. Values may be CDK tokens (strings) when a
construct calls them; the builders never inspect values they only pass through.
"""

from typing import Any

Manifest = dict[str, Any]

__all__ = ["Manifest"]
