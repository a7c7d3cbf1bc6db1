"""Business rules per resource: no HTTP, no SQL strings."""
