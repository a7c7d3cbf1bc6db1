"""GPU pool selections (catalog/pools.py) and GraphQL's value spellings (api/graphql/wire.py)."""

from __future__ import annotations

import pytest

from runplane.api.graphql import wire
from runplane.catalog.catalog import build_catalog
from runplane.catalog.pools import POOLS, GpuPools
from runplane.errors import Invalid
from runplane.schemas.templates import TemplateCreate

CUSTOM = "ACME Tensor 9000"
POOLS_OF = GpuPools(build_catalog(extra_gpu_types=[(CUSTOM, None, 64)]))


@pytest.mark.parametrize(("selection", "types"), [
    ("AMPERE_16", list(POOLS["AMPERE_16"])),
    ("ADA_24, AMPERE_48", ["NVIDIA L4", "NVIDIA GeForce RTX 4090", "NVIDIA A40",
                           "NVIDIA RTX A6000"]),
    ("AMPERE_48,-NVIDIA RTX A6000", ["NVIDIA A40"]),
    ("ADA_24,ADA_24,,", ["NVIDIA L4", "NVIDIA GeForce RTX 4090"]),
    (f"HOPPER_141,{CUSTOM}", ["NVIDIA H200", CUSTOM]),
    (CUSTOM, [CUSTOM]),
    ("NVIDIA L4,ADA_48_PRO,-NVIDIA L40", ["NVIDIA L40S", "NVIDIA RTX 6000 Ada Generation",
                                          "NVIDIA L4"]),
])
def test_selections_parse(selection: str, types: list[str]) -> None:
    assert POOLS_OF.parse(selection) == types


@pytest.mark.parametrize(("selection", "needle"), [
    ("AMPERE_99", "'AMPERE_99' is neither a GPU pool"),
    ("NVIDIA L99", "neither a GPU pool"),
    ("ADA_24,-NVIDIA A40", "'NVIDIA A40' is not a GPU type of the selected pools"),
    ("HOPPER_141,-NVIDIA H200", "excludes every GPU type"),
    ("-NVIDIA L4", "excludes from no pool"),
    ("", "no GPU pool or type selected"),
])
def test_bad_selections_name_the_field(selection: str, needle: str) -> None:
    with pytest.raises(Invalid) as caught:
        POOLS_OF.parse(selection)
    assert needle in caught.value.message and caught.value.field == "gpuIds"


@pytest.mark.parametrize("types", [
    ["NVIDIA A40"],
    ["NVIDIA L4", "NVIDIA GeForce RTX 4090", "NVIDIA H200"],
    ["NVIDIA H100 NVL", CUSTOM],
    list(POOLS_OF.pool_of_type),
])
def test_format_parses_back_to_the_same_types(types: list[str]) -> None:
    assert set(POOLS_OF.parse(POOLS_OF.format(types))) == set(types)


def test_rest_v2_form() -> None:
    assert POOLS_OF.selection_of(["NVIDIA A40", CUSTOM]) == (["AMPERE_48"], ["NVIDIA RTX A6000"])
    assert POOLS_OF.types_of(["AMPERE_48"], [" NVIDIA RTX A6000 "]) == ["NVIDIA A40"]
    with pytest.raises(Invalid) as caught:
        POOLS_OF.types_of(["ADA_24", "NOPE"])
    assert caught.value.field == "gpu.pools[1]"


@pytest.mark.parametrize("argv", [
    [], ["python", "-u", "h.py"], ["bash", "-c", '. /v/bin/activate && python -u "a b.py"'],
    ["echo", "it's", ""],
])
def test_start_commands_round_trip(argv: list[str]) -> None:
    assert wire.argv_in(wire.argv_out(argv)) == argv


def test_env_lists_and_renamed_validation_errors() -> None:
    assert wire.env_in([{"key": "A", "value": "1"}]) == {"A": "1"}
    assert wire.env_out({"A": "1"}) == [{"key": "A", "value": "1"}]
    with pytest.raises(Invalid) as caught:
        wire.env_in([{"key": "A", "value": "1"}, {"key": "A", "value": "2"}])
    assert caught.value.field == "env[1]"
    with pytest.raises(Invalid) as caught:
        wire.validated(TemplateCreate, {"name": "t", "imageName": "i", "dockerStartCmd": [1]},
                       {"dockerStartCmd": "dockerArgs"})
    assert caught.value.field == "dockerArgs[0]" and caught.value.message.startswith("dockerArgs[0]:")
