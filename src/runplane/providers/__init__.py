"""Providers: the only code that starts and stops worker and pod processes."""
