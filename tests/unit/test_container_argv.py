"""The container runtime's pure parts: the `run` command line, image references, pull output."""

from __future__ import annotations

import base64

import pytest

from runplane.providers.base import ContainerOptions, ImageError
from runplane.providers.runtimes.container.argv import (
    RunSpec,
    container_ports,
    env_file_text,
    run_argv,
    run_failure,
)
from runplane.providers.runtimes.container.engine import Engine
from runplane.providers.runtimes.container.image import (
    auth_config,
    is_container_image,
    pull_failure,
    pull_progress,
    qualify,
)

PODMAN = Engine("podman", "/usr/bin/podman")
DOCKER = Engine("docker", "/usr/bin/docker")
# podman makes the container (the launcher starts it); docker runs it.
BASE = ["create", "--rm", "--name", "runplane-w1", "--pull", "never",
        "--security-opt", "no-new-privileges"]
DBASE = ["run", *BASE[1:]]


def argv(engine: Engine = PODMAN, **kw: object) -> list[str]:
    spec = RunSpec(engine=engine, name="runplane-w1", image="img:1", env_file="/r/w1.env",
                   **{"init": False, **kw})  # type: ignore[arg-type]
    return run_argv(spec)


@pytest.mark.parametrize(("kw", "engine", "expected"), [
    # The image's own ENTRYPOINT and CMD, on the host network.
    ({}, PODMAN, [*BASE, "--network", "host", "--env-file", "/r/w1.env", "--", "img:1"]),
    # dockerStartCmd replaces CMD only.
    ({"options": ContainerOptions(cmd=("python", "-u", "h.py"))}, PODMAN,
     [*BASE, "--network", "host", "--env-file", "/r/w1.env", "--", "img:1", "python", "-u", "h.py"]),
    # dockerEntrypoint: its first word is --entrypoint, the rest lead the arguments.
    # (one word with its value, so a value starting with "-" is never an option.)
    ({"options": ContainerOptions(entrypoint=("bash", "-c"), cmd=("echo hi",))}, DOCKER,
     [*DBASE, "--network", "host", "--env-file", "/r/w1.env", "--entrypoint=bash", "--",
      "img:1", "-c", "echo hi"]),
    # --init and labels.
    ({"init": True, "labels": {"b": "2", "a": "1"}}, PODMAN,
     [*BASE, "--network", "host", "--env-file", "/r/w1.env", "--init", "--label", "a=1",
      "--label", "b=2", "--", "img:1"]),
    # GPUs: CDI devices for podman, one quoted device list for docker.
    ({"gpu_indices": (0, 2)}, PODMAN,
     [*BASE, "--network", "host", "--env-file", "/r/w1.env", "--device", "nvidia.com/gpu=0",
      "--device", "nvidia.com/gpu=2", "--", "img:1"]),
    ({"gpu_indices": (1, 3)}, DOCKER,
     [*DBASE, "--network", "host", "--env-file", "/r/w1.env", "--gpus", '"device=1,3"', "--", "img:1"]),
    # The network volume, and values an env file cannot hold: podman secrets the launcher
    # makes from its stdin (never the engine client's environment, nor its argv).
    ({"volume": ("/data/v1", "/runpod-volume"), "secrets": (("runplane-w1-env-0", "K"),)},
     PODMAN,
     [*BASE, "--network", "host", "--env-file", "/r/w1.env",
      "--secret", "runplane-w1-env-0,type=env,target=K",
      "--volume", "/data/v1:/runpod-volume", "--", "img:1"]),
    # The placed size as cgroup limits, and the pid cap.
    ({"options": ContainerOptions(cpus=2, memory_gb=4.5), "pids_limit": 4096}, PODMAN,
     [*BASE, "--network", "host", "--env-file", "/r/w1.env", "--cpus", "2", "--memory",
      "4608m", "--pids-limit", "4096", "--", "img:1"]),
    # Ports on the host network: nothing to publish (the container uses the host's).
    ({"port_map": {8888: 8888}}, PODMAN,
     [*BASE, "--network", "host", "--env-file", "/r/w1.env", "--", "img:1"]),
    # Another network: a hostname, and each port published on its host port.
    ({"network": "bridge", "port_map": {8888: 40001, 53: 40002}, "port_protos": {53: "udp"},
      "publish_ip": "127.0.0.1"}, PODMAN,
     [*BASE, "--network", "bridge", "--env-file", "/r/w1.env", "--hostname", "runplane-w1",
      "--publish", "127.0.0.1:40002:53/udp", "--publish", "127.0.0.1:40001:8888/tcp", "--",
      "img:1"]),
    # A load-balancing worker's port on loopback, the template's other ports at publish_ip.
    ({"network": "runplane-w1", "port_map": {8000: 40001, 8888: 40002},
      "port_hosts": {8000: "127.0.0.1"}}, PODMAN,
     [*BASE, "--network", "runplane-w1", "--env-file", "/r/w1.env", "--hostname",
      "runplane-w1", "--publish", "127.0.0.1:40001:8000/tcp",
      "--publish", "0.0.0.0:40002:8888/tcp", "--", "img:1"]),
    # containerDiskInGb only where the engine's storage enforces it.
    ({"options": ContainerOptions(disk_gb=20)}, PODMAN,
     [*BASE, "--network", "host", "--env-file", "/r/w1.env", "--", "img:1"]),
    ({"options": ContainerOptions(disk_gb=20)}, Engine("podman", "podman", disk_quota=True),
     [*BASE, "--network", "host", "--env-file", "/r/w1.env", "--storage-opt", "size=20G",
      "--", "img:1"]),
    # The operator's extra arguments go before the image.
    ({"run_args": ("--runtime", "runc")}, PODMAN,
     [*BASE, "--network", "host", "--env-file", "/r/w1.env", "--runtime", "runc", "--", "img:1"]),
])
def test_run_argv(kw: dict, engine: Engine, expected: list[str]) -> None:
    assert argv(engine, **kw) == [engine.binary, *expected]


@pytest.mark.parametrize(("image", "qualified"), [
    ("ubuntu", "docker.io/library/ubuntu:latest"),
    ("runpod/worker-v1-vllm:stable", "docker.io/runpod/worker-v1-vllm:stable"),
    ("ghcr.io/org/img:1.0", "ghcr.io/org/img:1.0"),
    ("localhost/runplane-test/worker:latest", "localhost/runplane-test/worker:latest"),
    ("127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b:latest"),
    ("img@sha256:" + "a" * 64, "docker.io/library/img@sha256:" + "a" * 64),
])
def test_short_names_are_qualified_as_docker_reads_them(image: str, qualified: str) -> None:
    assert qualify(image) == qualified


@pytest.mark.parametrize("image", ["", "Not an image!", "UPPER/case", "a//b", "img:",
                                   # an engine's option, never a reference
                                   "--privileged", "--privileged/img", "-x/img:1",
                                   "-registry.io/img"])
def test_bad_references_are_refused_with_a_reason(image: str) -> None:
    with pytest.raises(ImageError, match="is not a container image reference"):
        qualify(image)


def test_runtime_choice_by_image() -> None:
    assert not is_container_image("local:/srv/w") and not is_container_image("file:///srv/w")
    assert is_container_image("runpod/base:0.6.2") and is_container_image("img")


def test_auth_config_names_the_images_registry() -> None:
    token = base64.b64encode(b"u:p").decode()
    assert auth_config("ghcr.io/o/i:1", "u", "p") == {"auths": {"ghcr.io": {"auth": token}}}
    hub = auth_config("runpod/worker:1", "u", "p")["auths"]
    assert set(hub) == {"docker.io", "https://index.docker.io/v1/"}  # type: ignore[arg-type]


def test_ports_and_env_file() -> None:
    assert container_ports(["8888/http", "22/tcp", "53/udp", "8000", "bad/tcp"]) == [
        (8888, "tcp"), (22, "tcp"), (53, "udp"), (8000, "tcp")]
    text, rest = env_file_text({"A": "1", "B": "x=y z", "C": "two\nlines", "D": "cr\r"})
    assert text == "A=1\nB=x=y z\n" and rest == {"C": "two\nlines", "D": "cr\r"}


@pytest.mark.parametrize("name", ["A\n", "\nA", "A B", "A=B", "", "1A", "A,target=B", "A\r"])
def test_an_env_name_an_env_file_would_misread_is_refused(name: str) -> None:
    # "NAME" alone on a line makes the engine copy its own variable into the container.
    with pytest.raises(ImageError, match="not a valid environment variable name"):
        env_file_text({name: "v"})


# Real output: `podman pull` (4.3, not a terminal) and `docker pull` (28).
PODMAN_PULL = """Trying to pull 127.0.0.1:5123/private/worker:1...
Getting image source signatures
Copying blob sha256:5d51c37947184896fc8a8e091fc5ee721253cf7a4c55b0f65bb34fd6a7aaa5a0
Copying blob sha256:9d384d5f273028b515d39fddcdf6265f11547271be666aefb740698c8b62cb98
Copying blob sha256:6cf78b9a24a1e1e77a27c51593997c750b3636a153d47e3a6f85de943a3da166
Copying config sha256:d0d112467d4b716e493bddf805c079bdcc0c0f08f831684f467751812e04f9c7
Writing manifest to image destination
Storing signatures""".splitlines()
DOCKER_PULL = """1: Pulling from private/worker
5d51c3794718: Pulling fs layer
9d384d5f2730: Pulling fs layer
6cf78b9a24a1: Already exists
5d51c3794718: Verifying Checksum
5d51c3794718: Download complete
5d51c3794718: Pull complete""".splitlines()


@pytest.mark.parametrize(("lines", "expected"), [
    ([], "pulling img"),
    (PODMAN_PULL[:1], "pulling img: contacting the registry"),
    (PODMAN_PULL[:4], "pulling img: copying layer 2"),
    (PODMAN_PULL[:6], "pulling img: copied 3 layers, copying config"),
    (PODMAN_PULL, "pulling img: copied 3 layers, storing the image"),
    (DOCKER_PULL[:1], "pulling img: contacting the registry"),
    (DOCKER_PULL[:4], "pulling img: 1 of 3 layers done"),
    (DOCKER_PULL, "pulling img: 2 of 3 layers done"),
])
def test_pull_progress(lines: list[str], expected: str) -> None:
    assert pull_progress("img", lines) == expected


def test_pull_and_run_failures_say_why() -> None:
    out = ["Trying to pull r.io/x:1...",
           ("Error: initializing source docker://r.io/x:1: reading manifest 1 in r.io/x: "
            "unauthorized: authentication required")]
    assert pull_failure("r.io/x:1", out, 125) == (
        "pulling image r.io/x:1 failed: Error: initializing source docker://r.io/x:1: reading "
        "manifest 1 in r.io/x: unauthorized: authentication required")
    assert pull_failure("x", ["Error: Get https://u:pw@r.io/v2/: EOF"], 1) == \
        "pulling image x failed: Error: Get https://r.io/v2/: EOF"
    assert pull_failure("x", [], 1) == "pulling image x failed (exit code 1)"
    assert run_failure(["Error: crun: executable file `nope` not found"], 127) == (
        "the container engine could not run the image (exit code 127): "
        "Error: crun: executable file `nope` not found")
    assert run_failure(["Error: handler crashed"], 1) is None  # the container's own exit
    assert run_failure(["ERROR (catatonit:7): failed to exec pid1: No such file or directory"],
                       1) == ("the container's command could not be started (exit code 1): "
                              "ERROR (catatonit:7): failed to exec pid1: No such file or directory")
