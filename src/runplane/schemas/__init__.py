"""Pydantic models mirroring the OpenAPI components: what the wire accepts and answers."""
