"""RunPod's serverless GPU pools: the ids (``AMPERE_16``, ``ADA_24``...) that REST v2's
``gpu.pools`` and GraphQL's ``gpuIds`` name instead of GPU types.

The membership is RunPod's published table (docs: serverless GPU types / Flash ``GpuGroup``);
only members the server's catalog knows count. A selection is pools minus excluded types
(REST v2: ``pools`` + ``excludedTypes``; GraphQL: one comma string, ``"ADA_24,-NVIDIA L4"``).
GraphQL's string may also name bare GPU types, a runplane extension (the only way to name
the operator's own types, which are in no pool; REST v2 cannot express those).
"""

from __future__ import annotations

from collections.abc import Iterable

from runplane.catalog.catalog import Catalog
from runplane.errors import Invalid

POOLS: dict[str, tuple[str, ...]] = {
    "AMPERE_16": ("NVIDIA RTX A4000", "NVIDIA RTX 4000 Ada Generation",
                  "NVIDIA RTX 2000 Ada Generation"),
    "AMPERE_24": ("NVIDIA RTX A4500", "NVIDIA RTX A5000", "NVIDIA GeForce RTX 3090"),
    "ADA_24": ("NVIDIA L4", "NVIDIA GeForce RTX 4090"),
    "ADA_32_PRO": ("NVIDIA GeForce RTX 5090",),
    "AMPERE_48": ("NVIDIA A40", "NVIDIA RTX A6000"),
    "ADA_48_PRO": ("NVIDIA L40S", "NVIDIA L40", "NVIDIA RTX 6000 Ada Generation"),
    "AMPERE_80": ("NVIDIA A100 80GB PCIe", "NVIDIA A100-SXM4-80GB"),
    "ADA_80_PRO": ("NVIDIA H100 PCIe", "NVIDIA H100 80GB HBM3", "NVIDIA H100 NVL"),
    "HOPPER_141": ("NVIDIA H200",),
    "BLACKWELL_96": ("NVIDIA RTX PRO 6000 Blackwell Server Edition",
                     "NVIDIA RTX PRO 6000 Blackwell Workstation Edition",
                     "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition"),
    "BLACKWELL_180": ("NVIDIA B200",),
}


class GpuPools:
    """The pools as far as ``catalog`` knows their members (the catalog does not change while
    a server runs, so one instance serves it)."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self.members: dict[str, list[str]] = {
            pool: [t for t in types if t in catalog.gpu_types] for pool, types in POOLS.items()}
        # GPU type id -> its pool (types in no pool are absent).
        self.pool_of_type: dict[str, str] = {
            t: pool for pool, types in self.members.items() for t in types}

    def types_of(self, pools: Iterable[str], excluded: Iterable[str] = (),
                 field: str = "gpu") -> list[str]:
        """The GPU types of ``pools`` minus ``excluded`` (whitespace around names trimmed).
        ``Invalid`` for an unknown pool, an exclusion in none of the pools, or nothing left;
        ``field`` prefixes the blamed field (``gpu.pools[1]``)."""
        chosen: list[str] = []
        for i, pool in enumerate(p.strip() for p in pools):
            if pool not in self.members:
                raise Invalid(f"{field}.pools[{i}]: no GPU pool {pool!r} (one of "
                              f"{', '.join(POOLS)})", f"{field}.pools[{i}]")
            chosen.extend(t for t in self.members[pool] if t not in chosen)
        dropped = [t.strip() for t in excluded]
        for i, gpu in enumerate(dropped):
            if gpu not in chosen:
                raise Invalid(f"{field}.excludedTypes[{i}]: {gpu!r} is not a GPU type of the "
                              "selected pools", f"{field}.excludedTypes[{i}]")
        left = [t for t in chosen if t not in dropped]
        if not left:
            raise Invalid(f"{field}.excludedTypes: excludes every GPU type of the pools",
                          f"{field}.excludedTypes")
        return left

    def selection_of(self, gpu_type_ids: Iterable[str]) -> tuple[list[str], list[str]]:
        """(pools, excluded types) selecting ``gpu_type_ids``: every pool one of them is in,
        and the members of those pools left out. Types in no pool are not in the answer."""
        wanted = set(gpu_type_ids)
        pools = [p for p, types in self.members.items() if wanted & set(types)]
        excluded = [t for p in pools for t in self.members[p] if t not in wanted]
        return pools, excluded

    # -- GraphQL's one-string form --------------------------------------------------------

    def parse(self, selection: str, field: str = "gpuIds") -> list[str]:
        """GPU types from ``"AMPERE_16,ADA_24,-NVIDIA L4"``: pools, ``-<type>`` exclusions
        from them, and bare GPU types (a runplane extension; needed for types in no pool);
        ``Invalid`` naming ``field``."""
        pools: list[str] = []
        excluded: list[str] = []
        extra: list[str] = []
        for token in (part.strip() for part in selection.split(",")):
            if not token:
                continue
            if token.startswith("-"):
                excluded.append(token[1:])
            elif token in self.members:
                pools.append(token)
            elif token in self._catalog.gpu_types:
                extra.append(token)
            else:
                raise Invalid(f"{field}: {token!r} is neither a GPU pool ({', '.join(POOLS)}) "
                              "nor a GPU type", field)
        if not pools:
            if excluded:
                raise Invalid(f"{field}: -{excluded[0].strip()} excludes from no pool", field)
            if not extra:
                raise Invalid(f"{field}: no GPU pool or type selected", field)
            return extra
        try:
            chosen = self.types_of(pools, excluded)
        except Invalid as err:
            raise Invalid(f"{field}: {err.message.split(': ', 1)[1]}", field) from None
        return chosen + [t for t in extra if t not in chosen]

    def format(self, gpu_type_ids: Iterable[str]) -> str:
        """The one-string form of ``gpu_type_ids``; ``parse`` of it gives the same set."""
        ids = list(gpu_type_ids)
        pools, excluded = self.selection_of(ids)
        rest = [t for t in ids if t not in self.pool_of_type]
        return ",".join([*pools, *(f"-{t}" for t in excluded), *rest])
