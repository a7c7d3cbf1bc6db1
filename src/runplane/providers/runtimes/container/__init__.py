"""The container runtime (docs/containers.md): a template's image run as one podman or docker
container per worker, through the engine's CLI.

It owns the runtime itself (``runtime.ContainerRuntime``: start, stop, park, resume, take
over, remove leftovers), the engine and its settings (``engine``), what the launcher is told
to do (``plan``), the engine's command line and what its exit says (``argv``), images,
registry auth and pulls (``image``), private networks and the door to the server
(``network``), a paused container's cgroup freezer (``freezer``), one container's state as a
``ProcessInfo`` (``watch``) and the take-over after a restart (``adopt``).

Three of its files are programs, not modules: ``launch.py`` (pull, create, then become the
attached engine client), ``forward.py`` (the door inside a private network) and ``follow.py``
(a taken-over container's output and exit). They are run by path as ``python -I -S <file>``
(the paths are ``runtime.LAUNCHER``, ``plan.FORWARDER`` and ``adopt.FOLLOWER``/``FORWARDER``), with
the standard library only: they never import this package or the server. This ``__init__``
imports nothing, so importing ``image`` (the registry-auth service does) loads no runtime.
"""
