"""Canonical JSON: the exact bytes every hash and signature in robo is computed over.

Two spellings exist and both are frozen, because hashes and signatures made
with them are stored in databases and travel between regions:

- :func:`signed_bytes`: sorted keys, no whitespace, UTF-8. Bundle and metrics
  signatures and overlay hashes cover these bytes.
- :func:`definition_bytes`: sorted keys, ``json.dumps``'s default separators,
  non-ASCII escaped. Version content hashes (``robo.loader.content_hash``)
  cover these bytes; they were written this way by robo 0.1.

Changing either would make every stored hash or signature fail to verify:
``tests/unit/test_compatibility.py`` checks both against files made by robo 0.1.
"""

from __future__ import annotations

import json
from typing import Any


def signed_bytes(data: Any) -> bytes:
    """The bytes a signature or an overlay hash covers."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def definition_bytes(data: Any) -> bytes:
    """The bytes a version's content hash covers for its definition."""
    return json.dumps(data, sort_keys=True).encode()
