"""Runtimes: how a provider turns a worker spec into something running (process, container)."""
