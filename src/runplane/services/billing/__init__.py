"""Billing: usage records and what they cost, per time bucket.

It owns the usage records and the /v1/billing reports (``records``), the pure aggregation of
intervals into UTC buckets (``buckets``), the parsing of /v1/billing's query (``query``) and
REST v2's breakdowns of the same records (``breakdowns``).
"""
