"""The emulators' cheaper per-request machinery answers what starlette and uuid did, byte for byte.

``base.json_bytes`` (orjson where it agrees, the standard encoder elsewhere), ``base.new_id``,
``base.base_url`` (remembered per scope) and the serving (httptools, uvloop where it imports) are
there for speed only: every response body, id and URL must be what the code they replaced made.
"""
from __future__ import annotations

import asyncio
import json
import math
import sys
import time
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette import responses
from starlette.requests import Request

from conftest import EMU_HTTP
from reconciler.emulators import base
from reconciler.emulators.base import JSONResponse, json_bytes, new_id


def starlette_render(content):
    """(bytes, None) as starlette's own JSONResponse renders ``content``, or (None, exception type)."""
    try:
        return responses.JSONResponse(content).body, None
    except Exception as exc:  # noqa: BLE001 - the type is what is compared
        return None, type(exc)


def ours(content):
    try:
        return JSONResponse(content).body, None
    except Exception as exc:  # noqa: BLE001
        return None, type(exc)


EDGE_VALUES = [
    {}, [], "", 0, -1, True, False, None,
    {"id": "9f0e", "n": 3, "ok": True, "none": None, "nested": {"list": [1, "two", [], {}]}},
    "\x00\x1f\x7f\"\\/\b\f\n\r\t \u2028\u2029 é ü 中文 \U0001f600",
    {"\x00key\n": "é", "": ""},
    2 ** 63 - 1, -(2 ** 63), 2 ** 63, 2 ** 64 - 1, 2 ** 64, -(2 ** 63) - 1, 10 ** 30,
    0.0, -0.0, 0.142, 1.0, 1 / 3, 1e-4, 9.99e-05, 1e-06, 1.5e-07, 1e15, 1e16, 1e21, 1.7976931348623157e308,
    math.nan, math.inf, -math.inf, {"x": math.nan}, [1, math.inf],
    {1: "int key"}, {True: "bool key"}, {None: "none key"}, {1.5: "float key"}, {"a": {2: "deep int key"}},
    (1, 2, "tuple"), {"t": ("a", 1)}, [[[[[[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]]]]],
    "\ud800", {"lone": "a\udfffb"},
    {"when": __import__("datetime").datetime(2026, 1, 2)}, {"id": uuid.UUID(int=1)}, {"s": {1, 2}},
    {"bytes": b"x"}, object(),
]


@pytest.mark.parametrize("content", EDGE_VALUES, ids=range(len(EDGE_VALUES)))
def test_json_bytes_are_starlettes_for_edge_values(content):
    assert ours(content) == starlette_render(content)


def test_json_bytes_refuse_a_cycle_as_starlette_does():
    loop: dict = {}
    loop["self"] = loop
    assert ours(loop) == starlette_render(loop) == (None, ValueError)


def test_json_bytes_of_subclasses_are_the_standard_encoders():
    from enum import Enum, IntEnum

    class Word(str):
        pass

    class Colour(Enum):
        RED = "red"

    class Size(IntEnum):
        BIG = 3

    for content in ({"w": Word("x")}, {"c": Colour.RED}, {"s": Size.BIG}, {"d": type("D", (dict,), {})(a=1)}):
        assert ours(content) == starlette_render(content)


json_leaves = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2 ** 70), max_value=2 ** 70)
               | st.floats(allow_nan=True, allow_infinity=True) | st.text()
               | st.text(alphabet=st.characters(codec=None, categories=None)))  # lone surrogates too
json_keys = st.text() | st.integers() | st.booleans() | st.none()
json_values = st.recursive(json_leaves, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(json_keys, inner, max_size=5) | st.tuples(inner, inner), max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_json_bytes_are_starlettes_for_any_json_value(content):
    assert ours(content) == starlette_render(content)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), st.none() | st.booleans() | st.integers(min_value=-(2 ** 63), max_value=2 ** 64 - 1)
                       | st.text(), max_size=8))
def test_plain_values_are_encoded_by_orjson(content):
    """The fast path is taken (not only agreed with): orjson's own bytes for plain content."""
    import orjson

    assert json_bytes(content) == orjson.dumps(content) == starlette_render(content)[0]


def test_new_id_is_a_uuid4_string():
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text  # lower-case hex, 8-4-4-4-12
    # every bit outside version and variant varies
    ors = ands = uuid.UUID(ids[0]).int
    for text in ids:
        ors |= uuid.UUID(text).int
        ands &= uuid.UUID(text).int
    fixed = (0xF << 76) | (0x3 << 62)
    assert ors | fixed == (1 << 128) - 1 and ands & ~fixed == 0


def _scope(**kw):
    scope = {"type": "http", "method": "GET", "scheme": "http", "server": ("127.0.0.1", 8000), "root_path": "",
             "path": "/source-connections", "query_string": b"", "headers": [(b"host", b"127.0.0.1:8000")]}
    scope.update(kw)
    return scope


BASE_URL_SCOPES = [
    _scope(),
    _scope(headers=[(b"host", b"api.example:8443")]),
    _scope(headers=[(b"host", b"first"), (b"host", b"second")]),
    _scope(headers=[]),
    _scope(headers=[], server=("127.0.0.1", 80)),
    _scope(headers=[], server=("::1", 8000)),
    _scope(headers=[], server=None),
    _scope(scheme="https", headers=[], server=("10.0.0.1", 443)),
    _scope(headers=[(b"host", b"bad host!")], server=("127.0.0.2", 9000)),
    _scope(root_path="/v1"),
    _scope(root_path="/v1/"),
    _scope(root_path="/mounted", app_root_path="/app"),
    {k: v for k, v in _scope().items() if k != "root_path"},
    {k: v for k, v in _scope(headers=[]).items() if k not in ("scheme",)},
]


def test_base_url_is_starlettes_for_every_scope_twice():
    base._BASE_URLS.clear()
    for _ in range(2):  # the second round answers from the cache
        for scope in BASE_URL_SCOPES:
            assert base.base_url(Request(scope)) == str(Request(scope).base_url), scope


def test_base_url_cache_stays_bounded():
    base._BASE_URLS.clear()
    for i in range(1000):
        scope = _scope(headers=[(b"host", f"h{i}.example".encode())])
        assert base.base_url(Request(scope)) == f"http://h{i}.example/"
    assert len(base._BASE_URLS) <= 256


def test_loop_factory_is_uvloops_where_it_imports_and_asyncios_otherwise(monkeypatch):
    try:
        import uvloop
    except ImportError:
        assert base.loop_factory() is None
    else:
        assert base.loop_factory() is uvloop.new_event_loop
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError
    assert base.loop_factory() is None


def test_an_emulator_serves_with_httptools_on_the_chosen_loop(emulator):
    emu = emulator("airweave", targets=["docs-ab123"])
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    assert emu.server.config.http_protocol_class is HttpToolsProtocol
    loop = emu.server._loop
    factory = base.loop_factory()
    assert type(loop) is (type(factory()) if factory else asyncio.SelectorEventLoop)


def test_airweave_answers_are_starlettes_bytes_over_http(emulator):
    """Creates, details, lists, jobs (with float durations once a sync ran), errors: each body is
    the standard rendering of what it says, with starlette's headers."""
    emu = emulator("airweave", targets=["docs-ab123"], sync_duration=0.2)
    answers = []

    def call(method, path, key="test-key", **kw):
        response = EMU_HTTP.request(method, emu.url + path, headers={"x-api-key": key}, **kw)
        answers.append(response)
        return response

    created = [call("POST", "/source-connections", json={
        "name": f"conn-{i:03d} é", "short_name": "github", "readable_collection_id": "docs-ab123",
        "config": {"repo_name": f"company/repo-{i}", "branch": "main"}, "schedule": {"cron": f"{i} */6 * * *"},
        "authentication": {"credentials": {"personal_access_token": "ghp_x"}}}).json() for i in range(3)]
    browser = call("POST", "/v1/source-connections", json={
        "short_name": "gmail", "readable_collection_id": "docs-ab123", "authentication": {}}).json()
    assert browser["auth"]["auth_url"].startswith(emu.url + "/source-connections/authorize/")
    time.sleep(0.3)  # the first syncs complete: job views carry durations (floats)
    for record in created:
        call("GET", f"/source-connections/{record['id']}")
        call("GET", f"/source-connections/{record['id']}/jobs")
        call("POST", f"/source-connections/{record['id']}/run")
    call("GET", "/source-connections?collection=docs-ab123")
    call("GET", "/source-connections?collection=nothing-here")
    call("GET", "/collections")
    call("GET", "/collections/docs-ab123")
    call("GET", "/sources/github")
    call("GET", "/source-connections/not-a-uuid")
    call("GET", f"/source-connections/{uuid.uuid4()}")
    call("POST", "/source-connections", content=b"{not json")
    call("POST", "/source-connections", json={"short_name": 3})
    call("GET", "/source-connections", key="wrong")
    call("PATCH", f"/source-connections/{created[0]['id']}", json={"name": "renamed ü"})
    call("DELETE", f"/source-connections/{created[1]['id']}")
    call("GET", "/_emulator/stats")
    call("GET", "/_emulator/state")
    assert any(isinstance(j.get("duration_seconds"), float) for a in answers if a.request.url.path.endswith("/jobs")
               for j in a.json())
    for response in answers:
        assert response.headers["content-type"] == "application/json", response.request.url
        expected = responses.JSONResponse(json.loads(response.content), status_code=response.status_code)
        assert response.content == expected.body, response.request.url
        assert response.headers["content-length"] == str(len(expected.body))


def _uuid_of_path_as_before(raw):
    """What Airweave's path check answered before its fast path: the UUID's canonical text, or 422."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return "422"


@settings(max_examples=300, deadline=None)
@given(st.uuids().map(str) | st.uuids().map(lambda u: str(u).upper()) | st.uuids().map(lambda u: "{%s}" % u)
       | st.uuids().map(lambda u: u.hex) | st.uuids().map(lambda u: f"urn:uuid:{u}") | st.text(max_size=40)
       | st.uuids().map(lambda u: f"{u}\n") | st.uuids().map(lambda u: f" {u}"))
def test_airweave_path_ids_read_as_before(raw):
    from reconciler.emulators import airweave

    request = Request({"type": "http", "path_params": {"source_connection_id": raw}})
    try:
        answer = airweave._path_uuid(request, "source_connection_id")
    except airweave.ApiError as exc:
        assert exc.status == 422
        answer = "422"
    assert answer == _uuid_of_path_as_before(raw)
