"""providers/paging.walk on its own (issue 18: a partial list never becomes a plan): the edges the
emulator tests do not reach, against a scripted server (httpx.MockTransport, no sockets)."""
from __future__ import annotations

from typing import Any, Callable

import httpx
import pytest

from reconciler.errors import ProviderError
from reconciler.http import HttpClient
from reconciler.providers.paging import Next, TruncatedList, next_link, walk

BASE = "https://api.example.test/v1/"


def client(handler: Callable[[httpx.Request], httpx.Response]) -> HttpClient:
    return HttpClient("https://api.example.test/v1", transport=httpx.MockTransport(handler))


def items(*ids: int) -> list[dict[str, Any]]:
    return [{"id": str(i)} for i in ids]


def run(handler, limit: int = 3, next_of=lambda body: Next()) -> list[str]:
    return [i["id"] for i in walk(client(handler), "things", base_url=BASE, limit=limit, what="t", next_of=next_of)]


def test_a_full_last_page_with_an_explicit_end_is_trusted():
    # exactly one page of `limit` items and the body says "no more": no probe, no refusal
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.params)
        return httpx.Response(200, json={"data": items(1, 2, 3), "next_cursor": None})

    assert run(handler, next_of=lambda b: Next(end=b["next_cursor"] is None)) == ["1", "2", "3"]
    assert len(calls) == 1


def test_cursor_pages_then_a_full_final_page_without_cursor_ends_the_walk():
    pages = {None: (items(1, 2, 3), "c1"), "c1": (items(4, 5, 6), None)}

    def handler(request: httpx.Request) -> httpx.Response:
        data, cursor = pages[request.url.params.get("cursor")]
        body: dict[str, Any] = {"data": data}
        if cursor:
            body["cursor"] = cursor
        return httpx.Response(200, json=body)

    # the server showed it pages by cursor: its missing cursor on a full page is its end
    assert run(handler, next_of=lambda b: Next(cursor=b.get("cursor"))) == ["1", "2", "3", "4", "5", "6"]


def test_offset_walk_ends_at_an_empty_page_after_an_exact_multiple():
    rows = items(1, 2, 3, 4, 5, 6)

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params.get("offset", 0))
        return httpx.Response(200, json={"data": rows[offset:offset + 3]})

    assert run(handler) == ["1", "2", "3", "4", "5", "6"]


def test_a_server_ignoring_offset_is_refused():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": items(1, 2, 3)})

    with pytest.raises(TruncatedList, match="may be truncated"):
        run(handler)


def test_a_short_page_is_the_whole_list():
    assert run(lambda r: httpx.Response(200, json={"data": items(1, 2)})) == ["1", "2"]


def test_links_are_followed_on_the_same_host_only():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("page") == "2":
            return httpx.Response(200, json={"data": items(4)})
        return httpx.Response(200, json={"data": items(1, 2, 3)},
                              headers={"link": '<https://api.example.test/v1/things?page=2&limit=3>; rel="next"'})

    assert run(handler) == ["1", "2", "3", "4"]

    def elsewhere(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": items(1, 2, 3)},
                              headers={"link": '<https://evil.example/v1/things?page=2>; rel="next"'})

    with pytest.raises(ProviderError, match="leaves https://api.example.test"):
        run(elsewhere)


def test_next_link_reads_rfc8288_headers():
    assert next_link('<https://a/x?p=2>; rel="next", <https://a/x?p=9>; rel="last"') == "https://a/x?p=2"
    assert next_link('<https://a/x?p=1>; rel="prev"') is None
    assert next_link(None) is None
