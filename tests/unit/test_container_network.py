"""A private network's door to the server (container/network.py): where the server is, which
port it has inside the container, and the worker URLs when that port moved."""

from __future__ import annotations

import pytest

from runplane.providers.base import ImageError
from runplane.providers.runtimes.container.network import (
    Door,
    check_engine,
    door_for,
    loopback_address,
    rewrite_server_urls,
)


@pytest.mark.parametrize(("url", "expected"), [
    ("http://127.0.0.1:8000", ("127.0.0.1", 8000)),
    ("http://localhost:9000/", ("127.0.0.1", 9000)),
    ("http://[::1]:8000", ("::1", 8000)),
    ("http://127.0.0.2", ("127.0.0.2", 80)),
    # Not on loopback: a container reaches it as any other address, with no door.
    ("https://runplane.example.com", None),
    ("http://10.0.0.5:8000", None),
    ("", None),
])
def test_loopback_address(url: str, expected: tuple[str, int] | None) -> None:
    assert loopback_address(url) == expected


def test_the_door_keeps_the_servers_port_unless_the_container_declares_it() -> None:
    assert door_for(("127.0.0.1", 8000), [8888]) == Door("127.0.0.1", 8000, 8000)
    assert door_for(("127.0.0.1", 8000), [8000, 8001]) == Door("127.0.0.1", 8000, 8002)
    assert door_for(None, [8000]) is None


def test_worker_urls_follow_a_moved_door() -> None:
    env = {"RUNPOD_WEBHOOK_PING": "http://127.0.0.1:8000/v2/e/ping/w",
           "OTHER": "http://127.0.0.1:80001", "BASE": "http://127.0.0.1:8000", "X": "1"}
    moved = rewrite_server_urls(env, "http://127.0.0.1:8000", Door("127.0.0.1", 8000, 8002))
    assert moved == {**env, "RUNPOD_WEBHOOK_PING": "http://127.0.0.1:8002/v2/e/ping/w",
                     "BASE": "http://127.0.0.1:8002"}
    assert rewrite_server_urls(env, "http://127.0.0.1:8000",
                               Door("127.0.0.1", 8000, 8000)) == env


def test_docker_is_refused_what_it_cannot_do_safely() -> None:
    check_engine("podman", "private", ["MULTI"])
    check_engine("docker", "host", [])
    with pytest.raises(ImageError, match="needs podman"):
        check_engine("docker", "private", [])
    with pytest.raises(ImageError, match="MULTI: a value with a newline"):
        check_engine("docker", "bridge", ["MULTI"])
