"""Where a paused container's freezer is, from /proc/<pid>/cgroup (container/freezer.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runplane.providers.runtimes.container.freezer import freezer_of

ROOT = Path("/sys/fs/cgroup")
V1 = """12:pids:/libpod_parent/libpod-abc
7:freezer:/libpod_parent/libpod-abc
1:name=systemd:/libpod_parent/libpod-abc
0::/libpod_parent/libpod-abc
"""


@pytest.mark.parametrize(("text", "expected"), [
    (V1, (ROOT / "freezer/libpod_parent/libpod-abc/freezer.state", "FROZEN", "THAWED")),
    ("0::/machine.slice/libpod-abc.scope/container\n",
     (ROOT / "machine.slice/libpod-abc.scope/container/cgroup.freeze", "1", "0")),
    ("4:cpu,freezer:/docker/abc\n", (ROOT / "freezer/docker/abc/freezer.state", "FROZEN", "THAWED")),
    ("3:memory:/docker/abc\n", None),  # no freezer hierarchy, no unified one
    ("", None),
    ("garbage\n", None),
])
def test_freezer_of(text: str, expected: tuple[Path, str, str] | None) -> None:
    assert freezer_of(text, ROOT) == expected
