"""Connectors API: pure logic of the adapter and the emulator's config validation (no network)."""
from __future__ import annotations

import base64

import httpx
import pytest

from reconciler.emulators.connectors_api import _decode_cursor, _encode_cursor, validate_config
from reconciler.model import Connector, ProviderConfig, Secret
from reconciler.providers import provider_class


def adapter():
    return provider_class("connectors-api")(ProviderConfig(name="capi", type="connectors-api",
                                                           url="http://127.0.0.1:9", api_key=Secret("capi-key-9876")))


def test_capabilities():
    caps = adapter().capabilities
    assert caps.updatable == {"name", "scope", "credentials"} and caps.replace_on == {"source", "target"}
    assert not caps.list_is_complete and caps.can_sync and not caps.can_cancel_sync and not caps.schedule_forms


def test_desired_fields_fill_server_defaults_only_where_the_server_does():
    p = adapter()
    pg = Connector(name="w", provider="capi", source="postgresql", target="c",
                   scope={"host": "h", "port": 5432, "database": "d"})
    assert p.desired_fields(pg)["scope"] == {"host": "h", "port": 5432, "database": "d", "schema": "public"}
    custom = Connector(name="w", provider="capi", source="postgresql", target="c",
                       scope={"host": "h", "port": 5432, "database": "d", "schema": "raw"})
    assert p.desired_fields(custom)["scope"]["schema"] == "raw"
    drive = Connector(name="d", provider="capi", source="google_drive", target="c")
    assert p.desired_fields(drive) == {"source": "google_drive", "target": "c"}
    assert p.identity(drive) == "d"


def test_error_message_reads_code_message_and_details():
    p = adapter()
    response = httpx.Response(422, json={"error": {"code": "validation_error", "message": "Invalid connector",
                                                   "details": [{"field": "config.bucket", "message": "is required"}]}})
    assert p.error_message(response) == "validation_error: Invalid connector (config.bucket: is required)"
    assert p.error_message(httpx.Response(503, json={"detail": "down"})) == "down"
    assert p.error_message(httpx.Response(502, text="bad gateway")) == "bad gateway"


def test_job_mapping():
    job = adapter()._job({"jobId": "job_1", "status": "running", "progress": {"collected": 5, "parsed": 3, "indexed": 1},
                          "startedAt": "t0", "completedAt": None})
    assert (job.id, job.status, job.progress, job.done) == ("job_1", "running", {"collected": 5, "parsed": 3, "indexed": 1}, False)
    assert adapter()._job({"jobId": "j", "status": "failed", "error": "boom"}).done


def test_body_reveals_credentials_nested_and_only_there():
    p = adapter()
    c = Connector(name="n", provider="capi", source="s3", target="c", scope={"bucket": "b", "region": "r"},
                  credentials={"accessKeyId": Secret("AKIA-unit"), "role": {"externalId": Secret("ext-unit")}})  # type: ignore[dict-item]
    body = p._body(c)
    assert body["credentials"] == {"accessKeyId": "AKIA-unit", "role": {"externalId": "ext-unit"}}
    assert body["name"] == "n" and body["type"] == "s3" and body["collection"] == "c"


@pytest.mark.parametrize("type_name, config, problems", [
    ("s3", {"bucket": "b", "region": "r"}, []),
    ("s3", {"bucket": "", "region": "r"}, ["config.bucket"]),
    ("postgresql", {"host": "h", "port": True, "database": "d"}, ["config.port"]),
    ("postgresql", {"host": "h", "port": 70000, "database": "d"}, ["config.port"]),
    ("slack", {"channels": ["a"], "dateRange": {"from": "2024-01-01"}}, []),
    ("slack", {"channels": ["a"], "dateRange": {"since": "x"}}, ["config.dateRange"]),
    ("confluence", {"instanceUrl": "https://acme.atlassian.net", "spaceKeys": ["ENG", ""]}, ["config.spaceKeys"]),
    ("github", "repos", ["config"]),
])
def test_validate_config(type_name, config, problems):
    assert [d["field"] for d in validate_config(type_name, config)] == problems


def test_cursor_round_trip_and_rejects_garbage():
    assert _decode_cursor(_encode_cursor(42)) == 42
    assert _decode_cursor("garbage!") is None
    assert _decode_cursor(base64.urlsafe_b64encode(b"nope:1").decode()) is None  # decodes, wrong prefix
