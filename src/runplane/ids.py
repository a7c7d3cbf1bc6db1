"""Random identifiers shaped like RunPod's (lowercase alphanumerics, URL-path safe)."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits


def new_id(length: int = 14) -> str:
    """A random lowercase alphanumeric id; 14 characters like RunPod endpoint and pod ids."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_template_id() -> str:
    """Template, network volume and registry auth ids are 10 characters on RunPod."""
    return new_id(10)
