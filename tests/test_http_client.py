"""reconciler.http.HttpClient's requests, against a scripted server (httpx.MockTransport, no sockets):
what goes on the wire now that requests are built without Client.build_request, and no cookies."""
from __future__ import annotations

import json

import httpx
import pytest

from reconciler.errors import ProviderError
from reconciler.http import HttpClient


def client(handler, **kwargs) -> HttpClient:
    return HttpClient("https://api.example.test/v1", headers={"x-api-key": "k-123456"},
                      transport=httpx.MockTransport(handler), **kwargs)


def test_a_cookie_a_server_sets_is_never_sent_back():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={}, headers={"set-cookie": "session=abc123; Path=/"})

    http = client(handler)
    http.json("GET", "things", kind="list")
    http.json("POST", "things", kind="create", json={"a": 1})
    assert len(seen) == 2
    assert all("cookie" not in r.headers for r in seen)
    assert not http._client.cookies
    with pytest.raises(TypeError):
        http._client.cookies = {"session": "abc123"}


def test_the_request_carries_the_url_headers_body_and_params():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"ok": True})

    http = client(handler, timeout=12.0)
    assert http.json("POST", "/source-connections", kind="create", json={"name": "ü", "n": 1}) == {"ok": True}
    http.request("GET", "things/a%2Fb", kind="get", params={"skip": 0, "limit": 10}, headers={"x-extra": "1"})
    post, get = seen
    assert str(post.url) == "https://api.example.test/v1/source-connections"
    assert post.method == "POST" and json.loads(post.content) == {"name": "ü", "n": 1}
    assert post.headers["content-type"] == "application/json"
    assert post.headers["content-length"] == str(len(post.content))
    assert post.headers["x-api-key"] == "k-123456" and "x-extra" not in post.headers
    assert post.extensions["timeout"]["read"] == 12.0
    assert str(get.url) == "https://api.example.test/v1/things/a%2Fb?skip=0&limit=10"
    assert get.headers["x-extra"] == "1" and get.headers["x-api-key"] == "k-123456"
    assert get.content == b""


def test_a_same_origin_redirect_is_followed_with_the_same_body():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/old"):
            return httpx.Response(307, headers={"location": "/v1/new"})
        return httpx.Response(200, json={"moved": True})

    assert client(handler).json("POST", "old", kind="create", json={"a": 1}) == {"moved": True}
    assert [str(r.url) for r in seen] == ["https://api.example.test/v1/old", "https://api.example.test/v1/new"]
    assert json.loads(seen[1].content) == {"a": 1} and seen[1].headers["x-api-key"] == "k-123456"


def test_a_redirect_to_another_host_is_refused():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "https://elsewhere.test/steal"})

    with pytest.raises(ProviderError, match="redirected to another host"):
        client(handler).json("GET", "things", kind="list")


def test_a_response_leaves_no_reference_cycle_for_the_collector():
    """httpx keeps a read response in a cycle with its stream; the client breaks it, so a call's
    objects go with their last reference instead of piling up for collector pauses that stop
    every worker of an apply at once."""
    import gc
    import weakref

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/old"):
            return httpx.Response(307, headers={"location": "https://api.example.test/v1/new"})
        return httpx.Response(200, json={"items": [1, 2]})

    http = client(handler)
    gc.collect()
    gc.disable()
    try:
        for path in ("things", "old"):  # a redirect's first response too
            response = http.request("GET", path, kind="get")
            assert response.json() == {"items": [1, 2]} and response.content
            ref = weakref.ref(response)
            del response
            assert ref() is None, f"GET /{path}: the response outlived its last reference"
    finally:
        gc.enable()
