"""The one door from a container's own network to the host: its loopback's copy of the server's
port, forwarded to the server.

A container on a network of its own (``[container] network = "private"``) has its own
loopback, so the ``http://127.0.0.1:<port>`` URLs the worker protocol hands it
(``RUNPOD_WEBHOOK_*``) would reach nothing. This process listens on that address *inside the
container's network namespace* and connects each connection to the same address *on the host*:
the container reaches the server's port and no other port of the host's loopback.

Run by path as ``python -I -S forward.py <netns> <watch> <parent> <listen host> <listen port>
<host> <port> [<ready fd>]`` (standard library only, like the launcher):

- ``netns``: the container's network namespace (``/proc/<pid>/ns/net``); the listening socket
  is made there (``setns``, then back: the process itself stays on the host's network, so
  every connection it makes is the host's);
- ``watch``: the container's pid; the forwarder exits once that process is gone (or is another
  process: its network namespace changed), so it never outlives the container;
- ``listen host``/``listen port``: where the container finds the server: the address of
  ``public_url`` (its port unless the container declares that port itself);
- ``host``/``port``: what is forwarded to (the server's address in ``public_url``);
- ``ready fd``: a pipe it writes ``ready`` to once it listens (the launcher waits for it, so
  the container's command starts with the door open), or a reason it could not.

It sets a parent-death signal on itself (its ``parent``: the launcher, then the engine client
it becomes, or the server for a container a restarted server takes over), so it never
outlives the process that watches the container either.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
import threading
import time

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
_BUF = 65536


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def listen_in(netns: str, host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` in the network namespace ``netns``; the calling
    thread is back on its own namespace when this returns (or raises)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(netns, os.O_RDONLY)
    try:
        _setns(target)
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
        finally:
            _setns(own)
    finally:
        os.close(own)
        os.close(target)
    return sock


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(_BUF):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        # The other direction may still have bytes to send (a response after a request).
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass


def _serve(conn: socket.socket, host: str, port: int) -> None:
    try:
        upstream = socket.create_connection((host, port), timeout=10)
    except OSError:
        conn.close()
        return
    upstream.settimeout(None)
    for s in (conn, upstream):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    back = threading.Thread(target=_pump, args=(upstream, conn), daemon=True)
    back.start()
    _pump(conn, upstream)
    back.join()
    conn.close()
    upstream.close()


def _netns_of(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def _watch(pid: int, netns_ino: int | None) -> None:
    while _netns_of(pid) == netns_ino and netns_ino is not None:
        time.sleep(1.0)
    os._exit(0)


def _die_with(parent: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the signal was set
        os._exit(0)


def main() -> None:
    netns, watch, parent = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    listen_host, listen_port = sys.argv[4], int(sys.argv[5])
    host, port = sys.argv[6], int(sys.argv[7])
    ready = int(sys.argv[8]) if len(sys.argv) > 8 and sys.argv[8] else None
    _die_with(parent)
    try:
        sock = listen_in(netns, listen_host, listen_port)
    except OSError as err:
        if ready is not None:
            os.write(ready, f"cannot listen on {listen_host}:{listen_port}: {err}".encode())
            os.close(ready)
        sys.exit(1)
    threading.Thread(target=_watch, args=(watch, os.stat(netns).st_ino), daemon=True).start()
    if ready is not None:
        os.write(ready, b"ready")
        os.close(ready)
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=_serve, args=(conn, host, port), daemon=True).start()


if __name__ == "__main__":
    main()
