"""Connectors API: pure logic of the adapter and the emulator's config validation (no network)."""
from __future__ import annotations

import base64

import httpx
import pytest

from reconciler.emulators.base import BadCursor, decode_cursor, encode_cursor
from reconciler.emulators.connectors_api import validate_config
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
    # a finished job is finished whatever its word; an unknown word is shown and not waited on
    done = adapter()._job({"jobId": "j", "status": "running", "completedAt": "t1"})
    assert (done.status, done.done) == ("completed", True)
    odd = adapter()._job({"jobId": "j", "status": "Indexing-Paused"})
    assert (odd.status, odd.done) == ("indexing-paused", True)


@pytest.mark.parametrize("type_name, config, problems", [
    ("s3", {"bucket": "b", "region": "r"}, []),
    ("s3", {"bucket": "", "region": "r"}, ["config.bucket"]),
    ("postgresql", {"host": "h", "port": True, "database": "d"}, ["config.port"]),
    ("postgresql", {"host": "h", "port": 70000, "database": "d"}, ["config.port"]),
    ("slack", {"channels": ["a"], "dateRange": {"from": "2024-01-01"}}, []),
    ("slack", {"channels": ["a"], "dateRange": {"since": "x"}}, ["config.dateRange"]),
    ("confluence", {"instanceUrl": "https://acme.atlassian.net", "spaceKeys": ["ENG", ""]}, ["config.spaceKeys"]),
    # stricter since issue 18: empty lists, required keys the TypeConfig table implies (scope_rules.py)
    ("github", {"repos": []}, ["config.repos"]),
    ("confluence", {"spaceKeys": ["ENG"]}, ["config.instanceUrl"]),
    ("google_drive", {"folderIds": ["x"]}, ["config.folderIds"]),
    ("github", "repos", ["config"]),
])
def test_validate_config(type_name, config, problems):
    assert [d["field"] for d in validate_config(type_name, config)] == problems


def test_cursor_round_trip_and_rejects_garbage():
    assert decode_cursor(encode_cursor(42)) == 42
    for garbage in ("garbage!", base64.urlsafe_b64encode(b"nope:1").decode()):  # the second decodes, wrong prefix
        with pytest.raises(BadCursor):
            decode_cursor(garbage)
