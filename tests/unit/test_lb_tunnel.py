"""The framing of a manual load-balancing worker's tunnel (``lb.tunnel``): what is a frame,
what is not, and the heads and health reports carried in them."""

from __future__ import annotations

import pytest

from runplane.lb import tunnel as t


@pytest.mark.parametrize("kind, rid, payload", [
    (t.HEAD, 1, b'{"method":"GET"}'),
    (t.BODY, 7, b"\x00\x01binary\xff"),
    (t.BODY, t.MAX_ID, b"x" * t.CHUNK),
    (t.END, 2, b""),
    (t.ERROR, 3, "refused: ü".encode()),
    (t.CANCEL, 4, b""),
    (t.HEALTH, 0, b"200"),
])
def test_a_frame_round_trips(kind: int, rid: int, payload: bytes) -> None:
    data = t.encode(kind, rid, payload)
    assert len(data) == 5 + len(payload)
    assert t.decode(data) == t.Frame(kind, rid, payload)


@pytest.mark.parametrize("data, why", [
    (b"", "shorter"),
    (b"\x01\x00\x00\x00", "shorter"),
    (b"\x00\x00\x00\x00\x01", "unknown frame kind 0"),
    (b"\x09\x00\x00\x00\x01", "unknown frame kind 9"),
    (b"\x01\x00\x00\x00\x00", "request id 0"),  # only HEALTH has id 0
    (b"\x06\x00\x00\x00\x01200", "request id 0"),  # HEALTH has no other
    ("\x01\x00\x00\x00\x01", "text message"),
])
def test_what_is_not_a_frame(data: bytes | str, why: str) -> None:
    with pytest.raises(t.BadFrame, match=why):
        t.decode(data)


@pytest.mark.parametrize("kind, rid", [(0, 1), (t.BODY, -1), (t.BODY, t.MAX_ID + 1)])
def test_what_cannot_be_encoded(kind: int, rid: int) -> None:
    with pytest.raises(t.BadFrame):
        t.encode(kind, rid)


def test_heads_round_trip() -> None:
    req = t.RequestHead("POST", "/v1/chat%2Fx", "a=1&b=%20", [("Content-Type", "x/y"),
                                                             ("X-A", "1"), ("X-A", "2")], True)
    assert t.parse_request_head(t.request_head(req)) == req
    resp = t.ResponseHead(204, [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    assert t.parse_response_head(t.response_head(resp)) == resp


@pytest.mark.parametrize("payload", [
    b"not json", b"[1]", b'{"method": "GET"}', b'{"method": "G ET", "path": "/"}',
    b'{"method": "GET", "path": "http://elsewhere/"}',  # a path, never a URL
    b'{"method": "GET", "path": "/", "query": 1}',
    b'{"method": "GET", "path": "/", "headers": [["a"]]}',
    b'{"method": "GET", "path": "/", "headers": [["a", 1]]}',
])
def test_bad_request_heads(payload: bytes) -> None:
    with pytest.raises(t.BadFrame):
        t.parse_request_head(payload)


@pytest.mark.parametrize("payload", [
    b'{"headers": []}', b'{"status": 99}', b'{"status": 600}', b'{"status": true}',
    b'{"status": "200"}', b'{"status": 200, "headers": {"a": "b"}}',
])
def test_bad_response_heads(payload: bytes) -> None:
    with pytest.raises(t.BadFrame):
        t.parse_response_head(payload)


@pytest.mark.parametrize("status", [200, 204, 500, None])
def test_health_reports(status: int | None) -> None:
    frame = t.decode(t.health(status))
    assert (frame.kind, frame.rid) == (t.HEALTH, 0)
    assert t.parse_health(frame.payload) == status


@pytest.mark.parametrize("payload", [b"true", b"42", b'"200"', b"x", b"700"])
def test_bad_health_reports(payload: bytes) -> None:
    with pytest.raises(t.BadFrame):
        t.parse_health(payload)


@pytest.mark.parametrize("size, pieces", [(0, []), (1, [1]), (t.CHUNK, [t.CHUNK]),
                                          (t.CHUNK + 1, [t.CHUNK, 1]),
                                          (3 * t.CHUNK, [t.CHUNK] * 3)])
def test_bodies_go_in_pieces(size: int, pieces: list[int]) -> None:
    parts = t.chunks(b"x" * size)
    assert [len(p) for p in parts] == pieces
