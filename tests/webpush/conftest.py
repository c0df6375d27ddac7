"""Web Push suite (issue 11): the built pushauthd binary on an ephemeral loopback port with a
temporary data directory, the CLI device as the phone, and a push service written here on
loopback (allowed by the server's config) that records what it receives.

Needs no root and touches nothing outside its temporary directories. Paths of the built
binaries come from PUSHAUTH_TARGET_DIR (default: <repo>/target/debug); tests/webpush/run.sh
builds them.
"""

import json
import os
import pathlib
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
TARGET = pathlib.Path(os.environ.get("PUSHAUTH_TARGET_DIR", REPO / "target" / "debug"))
PUSHAUTHD = TARGET / "pushauthd"
DEVICE = TARGET / "pushauth-device"


def pytest_configure(config):
    for path in [PUSHAUTHD, DEVICE]:
        if not path.exists():
            pytest.exit(f"{path} is missing: run tests/webpush/run.sh (it builds them)", returncode=2)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, token=None, body=None, timeout=30):
    """One request; returns (status, parsed JSON or text)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    text = raw.decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


class PushService:
    """A push service on 127.0.0.1: records each request, answers with `status`, or never
    answers while `hang` is set."""

    def __init__(self):
        self.received = []
        self.cond = threading.Condition()
        self.status = 201
        self.hang = threading.Event()
        self.release = threading.Event()
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with service.cond:
                    service.received.append(
                        {"path": self.path, "headers": dict(self.headers.items()), "body": body}
                    )
                    service.cond.notify_all()
                if service.hang.is_set():
                    service.release.wait(120)
                    return
                self.send_response(service.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count, timeout=10.0):
        """Waits until `count` requests arrived; returns them all."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return list(self.received)

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class Server:
    """pushauthd serving on an ephemeral port, with [web_push] allowing `origin`."""

    def __init__(self, tmp, origin, extra=""):
        self.tmp = pathlib.Path(tmp)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data = self.tmp / "data"
        config = self.tmp / "pushauthd.toml"
        config.write_text(
            f'listen = "127.0.0.1:{self.port}"\n'
            f'data_dir = "{data}"\n'
            "[web_push]\n"
            f'allow_origins = ["{origin}"]\n'
            'subject = "mailto:ops@example.org"\n'
            f"{extra}"
        )
        config.chmod(0o600)
        self.log = open(self.tmp / "pushauthd.log", "w")
        self.proc = subprocess.Popen(
            [str(PUSHAUTHD), "serve", "--config", str(config)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": "info"},
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if http("GET", f"{self.url}/healthz", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"pushauthd did not start: {self.log_text()}")
            time.sleep(0.1)
        self.admin_token = (data / "admin-token").read_text().strip()
        self.data = data

    def log_text(self):
        self.log.flush()
        return (self.tmp / "pushauthd.log").read_text()

    def admin(self, method, path, body=None):
        return http(method, f"{self.url}{path}", self.admin_token, body)

    def metric(self, outcome):
        status, text = http("GET", f"{self.url}/metrics")
        assert status == 200
        prefix = f'pushauth_web_push_total{{outcome="{outcome}"}} '
        for line in text.splitlines():
            if line.startswith(prefix):
                return int(float(line[len(prefix):]))
        raise AssertionError(f"no {prefix} in {text}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Device:
    """The CLI device, its profile in a temporary folder."""

    def __init__(self, tmp, server, user, name):
        self.dir = pathlib.Path(tmp) / f"device-{name}"
        status, link = server.admin("POST", "/v1/admin/enrollments", {"user": user})
        assert status == 201, link
        self.run("enroll", link["url"], "--name", name)

    def run(self, *args, check=True):
        res = subprocess.run(
            [str(DEVICE), "--config-dir", str(self.dir), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and res.returncode != 0:
            raise AssertionError(f"pushauth-device {args}: {res.stdout}{res.stderr}")
        return res


@pytest.fixture
def push_service():
    service = PushService()
    yield service
    service.close()


@pytest.fixture
def server(push_service):
    with tempfile.TemporaryDirectory(prefix="pushauth-webpush-") as tmp:
        srv = Server(tmp, push_service.origin)
        try:
            yield srv
        finally:
            srv.stop()


@pytest.fixture
def rp_key(server):
    status, rp = server.admin("POST", "/v1/admin/relying-parties", {"name": "webpush test"})
    assert status == 201, rp
    return rp["api_key"]
