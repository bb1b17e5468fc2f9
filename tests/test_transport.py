"""Transport safety, end to end through the CLI: TLS verified by default, plain http:// off
loopback refused before any call, a redirect to another host never followed (so the auth header
stays home), a server that never answers ends the run with a clear timeout, and two concurrent
applies on one state: one proceeds, the other fails fast naming the holder.
"""
from __future__ import annotations

import datetime
import http.server
import ipaddress
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

from conftest import run_cli
from e2e_helpers import API_KEY, TOKENS, Project, Spec, emu_stats, manifest, start

ENV = {"P_KEY": API_KEY, **TOKENS}


def _write(tmp_path: Path, url: str, extra: str = "") -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(manifest("airweave", {"conn-a": Spec()}, extra_provider=extra).replace("${P_URL}", url))
    return path


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict] = []
    redirect_to: str | None = None

    def do_GET(self) -> None:  # noqa: N802
        type(self).seen.append(dict(self.headers))
        if self.redirect_to:
            self.send_response(307)
            self.send_header("Location", self.redirect_to + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"[]"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _serve(host: str, handler: type, tls: ssl.SSLContext | None = None) -> tuple[http.server.HTTPServer, str]:
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"{'https' if tls else 'http'}://{host}:{server.server_address[1]}"


def _self_signed(tmp_path: Path) -> ssl.SSLContext:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return ctx


def test_self_signed_certificate_is_refused_clearly(tmp_path):
    class Handler(_Recorder):
        seen: list[dict] = []

    server, url = _serve("127.0.0.1", Handler, _self_signed(tmp_path))
    try:
        r = run_cli("-v", "plan", str(_write(tmp_path, url)), env=ENV)
    finally:
        server.shutdown()
    assert r.code == 1, r.output
    assert "Traceback" not in r.output
    assert "TLS certificate could not be verified (self-signed certificate)" in r.stderr, r.output
    assert "retry" not in r.output  # a certificate failure is not transient
    assert Handler.seen == []  # the handshake failed: no request (and no api key) was sent
    assert API_KEY not in r.output


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_plain_http_off_loopback_is_refused_before_any_call(tmp_path, command):
    path = _write(tmp_path, "http://10.255.255.1:8080")
    r = run_cli(command, str(path), env=ENV, timeout=30)
    assert r.code == 1 and "Traceback" not in r.output, r.output
    assert f"{path.name}:5:" in r.stderr and "plain http:// to 10.255.255.1" in r.stderr, r.output
    # allowed explicitly: loads (the call itself is not attempted by validate)
    ok = _write(tmp_path, "http://10.255.255.1:8080", extra="\n    allow_insecure_http: true")
    assert run_cli("validate", str(ok), env=ENV).code == 0


def test_redirect_to_another_host_is_not_followed_and_keeps_the_key_home(tmp_path):
    class Other(_Recorder):
        seen: list[dict] = []

    class First(_Recorder):
        seen: list[dict] = []

    other, other_url = _serve("127.0.0.2", Other)
    First.redirect_to = other_url
    first, first_url = _serve("127.0.0.1", First)
    try:
        r = run_cli("plan", str(_write(tmp_path, first_url)), env=ENV)
    finally:
        first.shutdown()
        other.shutdown()
    assert r.code == 1 and "Traceback" not in r.output, r.output
    assert "redirected to another host (127.0.0.2)" in r.stderr, r.output
    assert len(First.seen) >= 1 and First.seen[0].get("x-api-key") == API_KEY
    assert Other.seen == []  # neither the request nor the x-api-key header ever reached the other host


def test_a_server_that_never_answers_times_out_clearly(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # accepts connections (kernel backlog), never reads or answers
    try:
        r = run_cli("plan", str(_write(tmp_path, f"http://127.0.0.1:{sock.getsockname()[1]}")),
                    env={**ENV, "RECONCILE_HTTP_TIMEOUT": "0.3"}, timeout=120)
    finally:
        sock.close()
    assert r.code == 1 and "Traceback" not in r.output, r.output
    assert "timed out (ReadTimeout)" in r.stderr and "failed after 6 attempts" in r.stderr, r.output


def test_bad_timeout_setting_is_a_clear_error(tmp_path):
    r = run_cli("plan", str(_write(tmp_path, "http://127.0.0.1:9")), env={**ENV, "RECONCILE_HTTP_TIMEOUT": "soon"})
    assert r.code == 1 and "RECONCILE_HTTP_TIMEOUT='soon'" in r.stderr, r.output


def test_two_concurrent_applies_one_proceeds_the_other_fails_fast_naming_the_holder(tmp_path, emulator):
    gate = threading.Event()  # closed: the first apply's calls wait, its lock held, until the second has tried
    emu = start(emulator, "nango", gate=gate)
    project = Project(tmp_path / "m", emu, "nango")
    project.write({f"conn-{i:02d}": Spec() for i in range(40)})
    first = project.popen_apply("--parallelism", "2")
    while emu.stats["requests"].get("total", 0) < 1 and first.poll() is None:
        time.sleep(0.01)  # it takes the lock before its first call
    assert first.poll() is None, project.collect(first)
    second = project.apply()
    gate.set()
    out, err = project.collect(first)
    assert first.returncode == 0, err
    assert second.code == 1, second.output
    assert "locked by pid" in second.stderr and f"pid {first.pid}" in second.stderr, second.stderr
    assert "Traceback" not in second.output
    project.assert_converged()
    assert emu_stats(emu)["faults"] == {}
