"""Connectors API conformance: each behaviour the emulator reproduces, and the adapter copes with,
named by the seed line it comes from (``shared/seeds/connectors-api.txt``, the only source we have
of this platform). Where the seed is silent the emulator takes the stricter plausible choice
(``reconciler/scope_rules.py``, docs/providers.md) and the adapter must work with each plausible
alternative the emulator's knobs offer (paging, PUT merge/replace, unknown status words)."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from conftest import EMU_HTTP, run_cli
from reconciler.http import RetryPolicy
from reconciler.model import Connector, ProviderConfig, Secret
from reconciler.providers import provider_class
from reconciler.providers.paging import TruncatedList

SEED = "seeds/connectors-api.txt"
KEY = "capi-conf-key-4411"
COL = "col_abc123"
AUTH = {"Authorization": f"Bearer {KEY}"}
S3_EXAMPLE = {  # lines 37-50, verbatim
    "name": "Document Storage", "type": "s3", "collection": "col_abc123",
    "config": {"bucket": "my-documents", "region": "us-east-1", "prefix": "/documents/"},
    "credentials": {"accessKeyId": "AKIA...", "secretAccessKey": "..."}}


@pytest.fixture
def capi(emulator):
    def start(**config):
        config.setdefault("targets", [COL])
        emu = emulator("connectors-api", api_key=KEY, **config)
        adapter = provider_class("connectors-api")(
            ProviderConfig(name="capi", type="connectors-api", url=emu.url, api_key=Secret(KEY)))
        adapter.http.retry = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)
        return emu, adapter

    return start


def post(emu, body: dict) -> httpx.Response:
    return EMU_HTTP.post(emu.url + "/v1/connectors", headers=AUTH, json=body)


def test_list_answers_the_seed_envelope_and_item_fields(capi):
    """Lines 11-27: ``GET /v1/connectors`` -> ``{"data": [{id, name, type, status, collection,
    lastSync, createdAt}]}``."""
    emu, _ = capi()
    assert post(emu, S3_EXAMPLE).status_code == 201
    body = EMU_HTTP.get(emu.url + "/v1/connectors", headers=AUTH).json()
    item = body["data"][0]
    assert {"id", "name", "type", "status", "collection", "lastSync", "createdAt"} <= set(item)
    assert (item["name"], item["type"], item["status"], item["collection"]) == (
        "Document Storage", "s3", "active", "col_abc123")


def test_both_s3_examples_are_accepted(capi):
    """Lines 37-50 (with prefix) and the SDK example, lines 152-164 (bucket and region only)."""
    emu, _ = capi()
    assert post(emu, S3_EXAMPLE).status_code == 201
    sdk = {"name": "Document Storage", "type": "s3", "collection": "col_abc123",
           "config": {"bucket": "my-docs", "region": "us-east-1"},
           "credentials": {"accessKeyId": "AKIA-env", "secretAccessKey": "from-env"}}
    assert post(emu, sdk).status_code == 201


def test_unknown_top_level_and_credential_fields_are_refused_without_echo(capi):
    """Decided (issue 18): the seed's bodies (lines 37-50, 78-83) have exactly name, type,
    collection, config, credentials; anything else, and a credential field s3 does not take
    (lines 46-49), is 422. Refusals name fields, never the submitted values."""
    emu, _ = capi()
    r = post(emu, {**S3_EXAMPLE, "description": "leak-me-not-1"})
    assert r.status_code == 422 and "description" in r.text and "leak-me-not-1" not in r.text
    r = post(emu, {**S3_EXAMPLE, "credentials": {**S3_EXAMPLE["credentials"], "sessionToken": "leak-me-not-2"}})
    assert r.status_code == 422 and "credentials.sessionToken" in r.text and "leak-me-not-2" not in r.text
    r = post(emu, {**S3_EXAMPLE, "collection": "col_leak-me-not-3"})
    assert r.status_code == 404 and "leak-me-not-3" not in r.text


def test_put_accepts_the_seeds_own_example_in_both_modes(capi):
    """Lines 74-83: ``PUT /v1/connectors/{id}`` with ``{"name": ..., "config": {"prefix": ...}}``.
    Whether the server merges or replaces ``config`` is not said: both knobs accept the example."""
    for mode, expected in (("replace", {"prefix": "/new-prefix/"}),
                           ("merge", {"bucket": "my-documents", "region": "us-east-1", "prefix": "/new-prefix/"})):
        emu, _ = capi(update_mode=mode)
        cid = post(emu, S3_EXAMPLE).json()["data"]["id"]
        r = EMU_HTTP.put(f"{emu.url}/v1/connectors/{cid}", headers=AUTH,
                      json={"name": "Updated Name", "config": {"prefix": "/new-prefix/"}})
        assert r.status_code == 200, (mode, r.text)
        assert r.json()["data"]["name"] == "Updated Name" and r.json()["data"]["config"] == expected


def test_sync_trigger_and_status_shapes(capi):
    """Lines 91-126: trigger -> ``{"data": {jobId, status: "queued", startedAt}}``; status ->
    ``{"data": {jobId, status, progress: {collected, parsed, indexed}, startedAt}}``."""
    emu, _ = capi(sync_duration=5)
    cid = post(emu, S3_EXAMPLE).json()["data"]["id"]
    job = EMU_HTTP.post(f"{emu.url}/v1/connectors/{cid}/sync", headers=AUTH).json()["data"]
    assert set(job) == {"jobId", "status", "startedAt"} and job["status"] == "queued"
    status = EMU_HTTP.get(f"{emu.url}/v1/connectors/{cid}/sync/{job['jobId']}", headers=AUTH).json()["data"]
    assert set(status["progress"]) == {"collected", "parsed", "indexed"} and status["jobId"] == job["jobId"]


def test_a_finished_job_is_finished_whatever_its_word_and_unknown_words_are_shown(capi):
    """Lines 102 and 118 show the words "queued" and "running" only; the rest is unknown. A job with
    ``completedAt`` set is done (decided); a word the adapter does not know is passed through and
    not waited on (issue 18)."""
    _, adapter = capi()
    assert adapter._job({"jobId": "j", "status": "running", "completedAt": "2024-01-20T14:05:00Z"}).status == "completed"
    odd = adapter._job({"jobId": "j", "status": "Reindexing"})
    assert odd.status == "reindexing" and odd.done


def test_sync_wait_shows_an_unknown_final_word_instead_of_waiting(capi, tmp_path):
    """The emulator's knob ``sync_status_word``: a finished job reports a word nobody documented.
    ``reconcile sync --wait`` ends at once with that word, not at --timeout."""
    emu, _ = capi(sync_duration=0.2, sync_status_word="done-ish")
    root = write(tmp_path, emu, {"docs": s3_manifest()})
    env = {"KEY": KEY, "TOK": "tok-conf-1"}
    assert run_cli("apply", str(root), "--yes", env=env).code == 0
    r = run_cli("sync", str(root), "--wait", "--timeout", "20s", env=env)
    assert "done-ish" in r.output and "timed out" not in r.output, r.output
    assert r.code == 0, r.output


# -- OAuth (lines 128-146) ---------------------------------------------------------------------

def test_oauth_types_wait_for_the_callback(capi):
    """Lines 56, 60 ("OAuth handled separately") and 128-146: ``GET /v1/connectors/oauth/{type}/
    authorize`` answers ``{"data": {"authUrl": ...}}``; ``POST .../callback`` completes it. Until
    then the connector is ``pending`` and cannot sync (decided), and it takes no credentials."""
    emu, _ = capi()
    assert post(emu, {"name": "d", "type": "google_drive", "collection": COL, "config": {},
                      "credentials": {"token": "x"}}).status_code == 422
    data = post(emu, {"name": "d", "type": "google_drive", "collection": COL, "config": {}}).json()["data"]
    assert data["status"] == "pending"
    assert EMU_HTTP.post(f"{emu.url}/v1/connectors/{data['id']}/sync", headers=AUTH).status_code == 409
    auth = EMU_HTTP.get(f"{emu.url}/v1/connectors/oauth/google_drive/authorize", headers=AUTH,
                     params={"connectorId": data["id"]}).json()["data"]
    assert auth["authUrl"].startswith("https://accounts.google.com/o/oauth2/")  # line 140
    state = parse_qs(urlparse(auth["authUrl"]).query)["state"][0]
    bad = EMU_HTTP.post(f"{emu.url}/v1/connectors/oauth/google_drive/callback", headers=AUTH,
                     json={"code": "c", "state": "forged"})
    assert bad.status_code == 404
    done = EMU_HTTP.post(f"{emu.url}/v1/connectors/oauth/google_drive/callback", headers=AUTH,
                      json={"code": "auth-code", "state": state})
    assert done.status_code == 200 and done.json()["data"]["status"] == "active"
    assert EMU_HTTP.post(f"{emu.url}/v1/connectors/{data['id']}/sync", headers=AUTH).status_code == 202
    assert EMU_HTTP.get(f"{emu.url}/v1/connectors/oauth/s3/authorize", headers=AUTH).status_code == 404


def test_plan_apply_and_status_print_the_authorize_url(capi, tmp_path):
    """Lines 128-146, through the CLI: apply creates the Notion connector and prints where to
    authorize it (sync_on_apply waits); plan and status print it while it is pending; after the
    callback it is active and nothing more is printed."""
    emu, _ = capi()
    root = write(tmp_path, emu, {"wiki": {"provider": "capi", "source": "notion", "target": COL,
                                          "sync_on_apply": True}})
    env = {"KEY": KEY}
    r = run_cli("apply", str(root), "--yes", env=env)
    assert r.code == 0 and "1 added" in r.stdout, r.output
    assert "capi.wiki: waits for authorization: open https://api.notion.com/v1/oauth/authorize?" in r.output
    r = run_cli("plan", str(root), "--detailed-exitcode", env=env)
    assert r.code == 0 and "capi.wiki waits for authorization: open https://api.notion.com/" in r.output, r.output
    r = run_cli("status", str(root), env=env)
    assert "wiki waits for authorization: open https://api.notion.com/" in r.output, r.output
    url = r.output.split("open ", 1)[1].split()[0]
    state = parse_qs(urlparse(url).query)["state"][0]
    EMU_HTTP.post(f"{emu.url}/v1/connectors/oauth/notion/callback", headers=AUTH, json={"code": "c", "state": state})
    r = run_cli("plan", str(root), "--detailed-exitcode", env=env)
    assert r.code == 0 and "authorization" not in r.output, r.output


# -- paging: not documented (lines 11-27 show a bare {"data": [...]}) ----------------------------

def _fill(emu, n: int) -> set[str]:
    return {post(emu, {**S3_EXAMPLE, "name": f"c{i}"}).json()["data"]["id"] for i in range(n)}


@pytest.mark.parametrize("mode", ["cursor", "link", "offset"])
def test_the_adapter_walks_every_plausible_paging(capi, mode):
    """The emulator's ``paging`` knob: a body cursor, an RFC 8288 Link header, or ``offset``.
    7 connectors in pages of 3: the adapter sees all 7, each once."""
    emu, adapter = capi(paging=mode)
    ids = _fill(emu, 7)
    adapter.page_limit = 3
    seen = [c.id for c in adapter.list([COL])]
    assert sorted(seen) == sorted(ids)


def test_a_list_it_cannot_see_past_is_refused(capi):
    """``paging: none``: a full first page, no cursor, no Link, ``offset`` ignored. The adapter
    cannot know what lies past it and refuses, rather than yield a partial list."""
    emu, adapter = capi(paging="none")
    _fill(emu, 5)
    adapter.page_limit = 3
    with pytest.raises(TruncatedList, match="may be truncated"):
        list(adapter.list([COL]))
    adapter.page_limit = 10  # a short page: the whole list
    assert len(list(adapter.list([COL]))) == 5


def test_a_truncated_list_fails_the_plan_instead_of_planning_creates_or_deletes(capi, tmp_path):
    """Through the CLI, with 100 live connectors (the adapter's page size) on a server that
    returns one page and no way onward: ``plan`` and ``apply`` exit 1 with the reason and plan
    nothing — not the re-creation of the connectors past the cut, nor a delete."""
    emu, _ = capi()
    root = write(tmp_path, emu, {"docs": s3_manifest()})
    env = {"KEY": KEY, "TOK": "tok-conf-1"}
    assert run_cli("apply", str(root), "--yes", env=env).code == 0
    _fill(emu, 100)  # hand-made ones, listed before ours
    emu.config.paging = "none"
    before = EMU_HTTP.get(emu.url + "/_emulator/state").json()["connectors"]
    for args in (("plan", str(root)), ("apply", str(root), "--yes")):
        r = run_cli(*args, env=env)
        assert r.code == 1 and "may be truncated" in r.output and "Traceback" not in r.output, r.output
        assert "will be created" not in r.output and "destroyed" not in r.output
    assert EMU_HTTP.get(emu.url + "/_emulator/state").json()["connectors"].keys() == before.keys()
    emu.config.paging = "cursor"
    assert run_cli("plan", str(root), "--detailed-exitcode", env=env).code == 0


# -- PUT: merge or replace (lines 74-83 do not say) -----------------------------------------------

@pytest.mark.parametrize("mode", ["replace", "merge"])
def test_updates_converge_whether_put_merges_or_replaces(capi, tmp_path, mode):
    """A key dropped from the manifest is gone after apply, a key the platform set (out of band)
    is kept (``LiveConnector.unowned``, HELPERS.md), and the next plan is empty — in both modes."""
    emu, _ = capi(update_mode=mode)
    root = write(tmp_path, emu, {"docs": s3_manifest(prefix="/v1/")})
    env = {"KEY": KEY, "TOK": "tok-conf-1"}
    assert run_cli("apply", str(root), "--yes", env=env).code == 0
    cid = next(iter(EMU_HTTP.get(emu.url + "/_emulator/state").json()["connectors"]))
    live = EMU_HTTP.get(f"{emu.url}/v1/connectors/{cid}", headers=AUTH).json()["data"]["config"]
    EMU_HTTP.put(f"{emu.url}/v1/connectors/{cid}", headers=AUTH,  # someone sets an endpoint in the platform's UI
              json={"config": {**live, "endpoint": "https://minio.internal"}}).raise_for_status()
    assert run_cli("plan", str(root), "--detailed-exitcode", env=env).code == 0  # the platform's own: no drift
    write(tmp_path, emu, {"docs": s3_manifest(prefix=None)})  # stop declaring prefix
    r = run_cli("apply", str(root), "--yes", env=env)
    assert r.code == 0 and "1 changed" in r.stdout, r.output
    config = EMU_HTTP.get(f"{emu.url}/v1/connectors/{cid}", headers=AUTH).json()["data"]["config"]
    assert config == {"bucket": "my-documents", "region": "us-east-1", "endpoint": "https://minio.internal"}
    assert run_cli("plan", str(root), "--detailed-exitcode", env=env).code == 0


# -- helpers ---------------------------------------------------------------------------------------

def s3_manifest(prefix: str | None = "/documents/") -> dict:
    scope = {"bucket": "my-documents", "region": "us-east-1"}
    if prefix:
        scope["prefix"] = prefix
    return {"provider": "capi", "source": "s3", "target": COL, "scope": scope,
            "credentials": {"accessKeyId": "${TOK}", "secretAccessKey": "${TOK}"}}


def write(tmp_path: Path, emu, connectors: dict) -> Path:
    import yaml

    root = tmp_path / "m"
    root.mkdir(exist_ok=True)
    doc = {"version": 1, "providers": {"capi": {"type": "connectors-api", "url": emu.url, "api_key": "${KEY}"}},
           "connectors": connectors}
    (root / "connectors.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return root


def test_default_url_is_the_one_the_examples_use():
    """Issue 15: the adapter's default host was a placeholder while the examples used another;
    the seed names none, so one host everywhere: the adapter, the loader's default, the examples."""
    from reconciler.manifest.build import DEFAULT_URLS

    url = provider_class("connectors-api").capabilities.default_url
    assert url == DEFAULT_URLS["connectors-api"] == "https://api.connectors-api.com"
    root = Path(__file__).resolve().parents[2]
    assert url in (root / "examples" / "connectors-api" / "main.yaml").read_text()
