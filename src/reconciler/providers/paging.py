"""Walking a list endpoint whose paging the platform does not document, without ever planning from
a partial list.

Aimable's seed says only that lists take ``limit`` (at most 100) and "support pagination"; the
Connectors API's seed shows a bare ``{"data": [...]}``. A guess at how the next page is reached
that is wrong cuts the list short, and connectors past the cut then look deleted (a plan
re-creates them) or orphaned. So :func:`walk` follows what the server itself shows (a cursor in
the body, an RFC 8288 ``Link: rel="next"`` header), trusts a short page or an explicit "no more",
and for a full page with no way onward probes ``offset``: a server that honours it gives new
items (walked on), one that ignores it repeats what was seen — and then the list may be truncated
and :class:`TruncatedList` stops the plan.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import parse_qsl, urlsplit

from ..errors import ProviderError
from ..http import HttpClient


class TruncatedList(ProviderError):
    """The list may have more items than the server let us reach: planning from it is unsafe."""


@dataclass(frozen=True, slots=True)
class Next:
    """What a page body says about the next one: a cursor, an explicit end, or nothing."""

    cursor: str | None = None
    end: bool = False  # the body says there is no next page (a null cursor, hasMore: false)


_LINK = re.compile(r'<([^>]*)>\s*((?:;\s*[^;,]+)*)')


def next_link(header: str | None) -> str | None:
    """The ``rel="next"`` target of a Link header, if any."""
    for target, params in _LINK.findall(header or ""):
        rels = re.findall(r'rel\s*=\s*"?([^";]+)"?', params)
        if any("next" in r.split() for r in rels):
            return target
    return None


def walk(http: HttpClient, path: str, *, base_url: str, limit: int, what: str,
         next_of: Callable[[Any], Next], items_of: Callable[[Any], list[Any]] | None = None,
         id_of: Callable[[Any], str] = lambda item: str(item.get("id")),
         params: Mapping[str, Any] | None = None, ok_404: bool = False,
         on_404: Callable[[], None] | None = None) -> Iterator[Any]:
    """Every item of the list at ``path``, or :class:`TruncatedList` before the plan sees a part.

    Items are yielded as pages arrive; the caller (the engine) collects the whole list before it
    plans, so an exception part-way leaves no plan at all.
    """
    items_of = items_of or (lambda body: list((body or {}).get("data") or []))
    base = urlsplit(base_url.rstrip("/") + "/")
    query: dict[str, Any] = {**(params or {}), "limit": limit}
    target = path
    seen: set[str] = set()
    how: str | None = None  # "cursor" | "link" | "offset", once the server has shown one
    while True:
        response = http.request("GET", target, kind="list", params=query, ok_404=ok_404)
        if response is None:
            if on_404 is not None:  # the container itself is missing (Provider.absent_targets)
                on_404()
            return
        body = response.json()
        items = items_of(body)
        fresh = [i for i in items if id_of(i) not in seen]
        if how == "offset" and len(fresh) < len(items):
            raise TruncatedList(
                f"{what}: the list of {path} returned a full page of {limit} with no way documented to the next "
                "(no cursor, no Link header, and `offset` is ignored): it may be truncated, and planning from "
                "it could re-create or delete connectors past the cut. Nothing was planned; ask the platform "
                "how its list pages, or keep fewer connectors per target than the page size")
        for item in items:
            seen.add(id_of(item))
            yield item
        marker = next_of(body)
        link = next_link(response.headers.get("link"))
        if marker.cursor:
            how, target = "cursor", path
            query = {**(params or {}), "limit": limit, "cursor": marker.cursor}
            continue
        if link:
            parts = urlsplit(link if "//" in link else base._replace(path=link).geturl())
            if (parts.scheme, parts.netloc) != (base.scheme, base.netloc) or not parts.path.startswith(base.path):
                raise ProviderError(f"{what}: the list's next-page link leaves {base.scheme}://{base.netloc}; "
                                    "not following it, so that credentials stay with the configured host")
            how, target = "link", parts.path[len(base.path):]
            query = dict(parse_qsl(parts.query))
            continue
        if marker.end or how in ("cursor", "link") or len(items) < limit:
            return  # the server said so, its own way of paging ended, or a short page
        how = "offset"
        query = {**(params or {}), "limit": limit, "offset": len(seen)}
        target = path
