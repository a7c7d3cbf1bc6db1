"""The pure guards of issue 13, as tables: platform environment names, webhook addresses,
worker results, and who may run ``local:`` images."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from runplane.api.v2.results import BadResult, parse_result
from runplane.broker.credentials import worker_env
from runplane.broker.webhook_guard import check_url, literal_address, networks, refusal
from runplane.controller.specs import volume_env
from runplane.errors import Forbidden, Invalid
from runplane.schemas.common import is_platform_env
from runplane.security_settings import SecuritySettings
from runplane.services.host_access import LocalImagePolicy
from runplane.services.users import Principal


def test_every_name_runplane_sets_is_refused_in_user_env(tmp_path: Path) -> None:
    env = worker_env("http://127.0.0.1:8000", 10_000, "ep", "w1", "tok", gpu="", accelerator=False)
    env |= volume_env(tmp_path / "v", "/runpod-volume")
    env |= {"RUNPOD_POD_ID": "p", "RUNPOD_POD_HOSTNAME": "p", "RUNPOD_GPU_COUNT": "1",
            "CUDA_VISIBLE_DEVICES": "0"}
    # Defaults a user may override: their own worker's behaviour only.
    user_settable = {"RUNPOD_SKIP_AUTO_SYSTEM_CHECKS", "RUNPLANE_ACCELERATOR"}
    assert {n for n in env if not is_platform_env(n)} <= user_settable
    for name in ("RUNPLANE_ANYTHING_NEW", "runplane_volume_path", "RUNPOD_WEBHOOK_X"):
        assert is_platform_env(name)
    for name in ("HF_TOKEN", "RUNPOD_LOG_LEVEL", "MODEL", "RUNPLANE_ACCELERATOR"):
        assert not is_platform_env(name)


@pytest.mark.parametrize(("address", "refused"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("10.1.2.3", "private"),
    ("172.16.0.1", "private"), ("192.168.0.1", "private"), ("100.64.0.1", "private"),
    ("fd00:ec2::254", "private"), ("0.0.0.0", "private"), ("224.0.0.1", "multicast"),
    ("192.0.2.1", "private"), ("8.8.8.8", None), ("2606:4700:4700::1111", None),
])
def test_webhook_addresses(address: str, refused: str | None) -> None:
    why = refusal(ipaddress.ip_address(address))
    assert (why is None) if refused is None else (refused in (why or ""))


def test_allowed_ranges_and_literal_spellings() -> None:
    allow = networks(["10.0.0.0/8", "::1/128"])
    assert refusal(ipaddress.ip_address("10.9.9.9"), allow) is None
    assert refusal(ipaddress.ip_address("::1"), allow) is None
    assert refusal(ipaddress.ip_address("192.168.1.1"), allow)
    for spelling in ("127.1", "2130706433", "0x7f.0.0.1", "0177.0.0.1"):
        assert str(literal_address(spelling)) == "127.0.0.1", spelling
    assert literal_address("example.com") is None and literal_address("face.b00c") is None
    for url in ("http://127.1/", "http://localhost:1/", "http://a.localhost/", "ftp://x/",
                "http:///nohost"):
        with pytest.raises(Invalid):
            check_url(url)
    check_url("https://hooks.example.com/x")  # a name: judged when sent


@pytest.mark.parametrize(("raw", "why"), [
    (b'{"output": NaN}', "not valid JSON"), (b"[Infinity]", "not valid JSON"),
    (b"1e999", "not valid JSON"), (b"[18446744073709551616]", "beyond 64 bits"),
    (b"[-9223372036854775809]", "beyond 64 bits"), (b"[" * 255 + b"]" * 255, "deeper"),
    (b"[" * 2000 + b"]" * 2000, "not valid JSON"), (b"{", "not valid JSON"),
    (b'{"id": "12345678901234567890123456"}', None), (b"[18446744073709551615]", None),
    (b"[-9223372036854775808]", None), (b"[" * 200 + b"]" * 200, None),
    (b'{"output": {"a": [1, 2.5, "x", null, true]}}', None),
])
def test_worker_results(raw: bytes, why: str | None) -> None:
    if why is None:
        parse_result(raw)
    else:
        with pytest.raises(BadResult, match=why):
            parse_result(raw)


@pytest.mark.parametrize(("users", "roots", "who", "image", "allowed"), [
    ([], [], Principal("u1"), "local:/srv/app", False),
    ([], [], Principal("u1"), "file:///srv/app", False),
    ([], [], Principal("u1"), "ubuntu:22.04", True),
    ([], [], Principal("a1", is_admin=True), "local:/srv/app", True),
    (["alice"], [], Principal("u1"), "local:/srv/app", True),  # by name
    (["u1"], [], Principal("u1"), "local:/srv/app", True),  # by id
    (["*"], [], Principal("u2"), "local:/srv/app", True),
    (["*"], ["/srv"], Principal("u2"), "local:/srv/app", True),
    (["*"], ["/srv"], Principal("u2"), "local:/srv/../etc", False),
    (["*"], ["/srv"], Principal("a1", is_admin=True), "local:/etc", False),
])
def test_who_may_run_local_images(users: list[str], roots: list[str], who: Principal,
                                  image: str, allowed: bool) -> None:
    policy = LocalImagePolicy(SecuritySettings(local_image_users=users, local_image_roots=roots),
                              lambda user_id: "alice" if user_id == "u1" else None)
    if allowed:
        policy.check(who, image)
    else:
        with pytest.raises(Forbidden):
            policy.check(who, image)
