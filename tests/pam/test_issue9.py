"""Issue 9, pam_push items, replayed through real PAM (pamtester, sudo, su): each test names the
item it replays and asserts the real outcome (login refused or let in, the push sent or not, the
syslog line, the challenge's state on the server)."""

import base64
import http.server
import io
import json
import os
import pathlib
import shutil
import socket
import subprocess
import threading
import time

import pexpect
import pytest

from conftest import ETC, MODULE, PAMD, REPO, run
from test_pamtester import (
    AUTH_ERR,
    AUTHINFO_UNAVAIL,
    OK,
    SERVICE_ERR,
    Pamtester,
    assert_syslog,
    dead_url,
)

SUDOERS = "/etc/sudoers.d/pushauth-test"
PASSWORD = "Issue9-Secret-Pw"


# ---------------------------------------------------------------- helpers


class FakeServer:
    """A loopback HTTP(S) server answering every request with `handler(method, path, body)`:
    `(status, text)`, or None to close the connection without an answer."""

    def __init__(self, handler, tls_context=None):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append((self.command, self.path, body))
                answer = handler(self.command, self.path, body)
                if answer is None:
                    self.close_connection = True
                    return
                status, text = answer
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _any

        self.requests = []
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls_context is not None:
            self.httpd.socket = tls_context.wrap_socket(self.httpd.socket, server_side=True)
            # A failed handshake is the expected outcome here, not worth a traceback.
            self.httpd.handle_error = lambda *a: None
        scheme = "https" if tls_context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class HungServer:
    """Accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held = []
        self.stopping = False
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        self.sock.settimeout(0.2)
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
                self.held.append(conn)
            except OSError:
                continue

    def close(self):
        self.stopping = True
        for c in self.held:
            c.close()
        self.sock.close()


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def created_answer(body, name, code):
    """A ChallengeCreated as pushauthd would send it, with the given device name and code."""
    user = json.loads(body)["user"]
    return json.dumps(
        {
            "id": "chal-issue9",
            "user": user,
            "devices": ["dev1"],
            "device_info": [
                {
                    "id": "dev1",
                    "name": name,
                    "alg": "ed25519",
                    "public_key": b64url(bytes(range(32))),
                    "created_at": "2026-01-01T00:00:00Z",
                    "last_seen_at": None,
                }
            ],
            "code": code,
            "expires_at": "2026-01-01T00:01:00Z",
            "state": "pending",
        }
    )


def openssl_cert(directory, name):
    """A self-signed certificate for 127.0.0.1 and its key (PEM files)."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    run(
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "2", "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1",
        "-keyout", key, "-out", cert,
    )
    os.chmod(cert, 0o644)
    os.chmod(key, 0o600)
    return cert, key


def finish_timed(p):
    started = time.monotonic()
    status, out = p.finish()
    return status, out, time.monotonic() - started


# ---------------------------------------------------------------- item 5


def test_issue9_item5_member_of_a_large_group_still_gets_the_push(syslog, etc, users, devices):
    """groups = ["pa_big"], a 1,000-member group larger than 16 KiB in /etc/group, the user a
    member: the push happens (it was PAM_IGNORE: the group became its number and stopped
    matching, so members skipped the push)."""
    saved = {p: pathlib.Path(p).read_bytes() for p in ("/etc/group", "/etc/gshadow")}
    try:
        run("groupadd", "pa_big")
        members = [f"pa_member_with_quite_a_long_account_name_{i:04d}" for i in range(1000)]
        members.insert(500, users["alice"])
        lines = pathlib.Path("/etc/group").read_text().splitlines()
        big = ""
        for i, line in enumerate(lines):
            fields = line.split(":")
            if fields[0] == "pa_big":
                fields[3] = ",".join(members)
                lines[i] = big = ":".join(fields)
        pathlib.Path("/etc/group").write_text("\n".join(lines) + "\n")
        assert len(big) > 16 * 1024 * 2, len(big)
        assert users["alice"] in run("id", "-nG", users["alice"]).stdout

        service = etc.service(
            "i9-bigroup",
            etc.conf("i9-bigroup", 'groups = ["pa_big"]\nprompt = "always"\n'),
            rest_of_stack="auth required pam_permit.so\n",
        )
        mark = syslog.mark()
        p = Pamtester(service, users["alice"])
        code = p.expect_code()
        challenge = devices["alice"].wait_pending()
        devices["alice"].approve(challenge["id"], code)
        p.child.sendline("")
        status, out = p.finish()
        assert status == 0 and OK in out, out
        assert_syslog(syslog, mark, "approved", users["alice"], service)
        # A glob pattern too.
        service = etc.service(
            "i9-bigglob", etc.conf("i9-bigglob", 'groups = ["pa_bi*"]\nprompt = "always"\n')
        )
        p = Pamtester(service, users["alice"])
        p.expect_code()
        p.child.sendline("c")
        status, out = p.finish()
        assert status != 0, out
    finally:
        for path, data in saved.items():
            pathlib.Path(path).write_bytes(data)


# ---------------------------------------------------------------- item 6


def test_issue9_item6_server_500_denies_with_safe(syslog, etc, users):
    """server_unreachable = "safe" and a server answering 500: refused (it let everyone in)."""
    fake = FakeServer(lambda m, p, b: (500, '{"error":"internal","message":"boom"}'))
    try:
        service = etc.service(
            "i9-500", etc.conf("i9-500", 'server_unreachable = "safe"\n', server_url=fake.url)
        )
        mark = syslog.mark()
        status, out = Pamtester(service, users["alice"]).finish()
        assert status != 0 and OK not in out, out
        assert AUTHINFO_UNAVAIL in out, out
        assert_syslog(syslog, mark, "server_error_denied", users["alice"], service)
        assert fake.requests, "the server was reached"
    finally:
        fake.close()


@pytest.mark.parametrize("with_ca_file", [True, False])
def test_issue9_item6_untrusted_tls_certificate_denies_with_safe(syslog, etc, users, with_ca_file):
    """server_unreachable = "safe" and a TLS server whose self-signed certificate is not in
    ca_file (nor in the web PKI): refused (a bad certificate counted as "unreachable")."""
    import ssl

    cert, key = openssl_cert(ETC, "i9-selfsigned")
    other_ca, _ = openssl_cert(ETC, "i9-other-ca")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    fake = FakeServer(lambda m, p, b: (200, '{"devices":[]}'), tls_context=ctx)
    try:
        extra = 'server_unreachable = "safe"\n'
        if with_ca_file:
            extra += f'ca_file = "{other_ca}"\n'
        name = f"i9-tls-{int(with_ca_file)}"
        service = etc.service(name, etc.conf(name, extra, server_url=fake.url))
        mark = syslog.mark()
        status, out = Pamtester(service, users["alice"]).finish()
        assert status != 0 and OK not in out, out
        assert AUTH_ERR in out, out
        line = assert_syslog(syslog, mark, "tls_failure_denied", users["alice"], service)
        assert "certificate" in line.lower() or "tls" in line.lower(), line
    finally:
        fake.close()


def test_issue9_item6_connection_refused_with_safe_lets_in(syslog, etc, users):
    """The documented behaviour stays: nothing listening, `safe` → let in with a warning."""
    service = etc.service(
        "i9-refused",
        etc.conf("i9-refused", 'server_unreachable = "safe"\n', server_url=dead_url()),
    )
    mark = syslog.mark()
    status, out = Pamtester(service, users["alice"]).finish()
    assert status == 0 and OK in out, out
    syslog.wait_for(mark, r"outcome=unreachable_allowed")


# ---------------------------------------------------------------- item 7


def test_issue9_item7_pinned_user_unknown_to_the_server_is_denied(syslog, etc, users):
    """bob has a pinned-key file but no device on the server; no_device = "allow" (or
    "ignore") must not let him in: a man in the middle can answer "unknown user"."""
    pins = ETC / "i9-pins"
    pins.mkdir(mode=0o755, exist_ok=True)
    (pins / users["bob"]).write_text(f"ed25519 {b64url(bytes(range(32)))} bob's phone\n")
    os.chmod(pins / users["bob"], 0o644)
    for policy in ("allow", "ignore"):
        service = etc.service(
            f"i9-pinned-{policy}",
            etc.conf(
                f"i9-pinned-{policy}",
                f'authorized_devices = "{pins}"\nno_device = "{policy}"\n',
            ),
        )
        mark = syslog.mark()
        status, out = Pamtester(service, users["bob"]).finish()
        assert status != 0 and OK not in out, out
        assert AUTH_ERR in out, out
        assert_syslog(syslog, mark, "unknown_user_pinned_denied", users["bob"], service)


def test_issue9_item7_remote_plain_http_is_a_config_error(syslog, etc, users):
    """server = "http://<another machine>" refuses logins with a clear syslog line."""
    service = etc.service(
        "i9-remote-http", etc.conf("i9-remote-http", server_url="http://192.0.2.10:8443")
    )
    mark = syslog.mark()
    status, out = Pamtester(service, users["alice"]).finish()
    assert status != 0 and OK not in out, out
    assert SERVICE_ERR in out, out
    _f, _s, line = syslog.wait_for(mark, r"pam_push: .*outcome=config_error")
    assert "plain http://" in line and "allow_insecure_http" in line, line


# ---------------------------------------------------------------- item 8


def test_issue9_item8_hung_server_keeps_the_timeout(syslog, etc, users):
    """timeout = 3 against a server that accepts and never answers: pamtester returns in about
    3 s (it took about 15 s), refused."""
    hung = HungServer()
    try:
        service = etc.service(
            "i9-hung",
            etc.conf("i9-hung", 'timeout = 3\nserver_unreachable = "safe"\n', server_url=hung.url),
        )
        mark = syslog.mark()
        started = time.monotonic()
        status, out = Pamtester(service, users["alice"]).finish()
        took = time.monotonic() - started
        assert status != 0 and OK not in out, out
        assert took < 4.0, f"took {took:.1f} s"
        assert_syslog(syslog, mark, "server_error_denied", users["alice"], service)
    finally:
        hung.close()


def test_issue9_item8_hung_first_server_fails_over_in_time(syslog, etc, server, users, devices):
    """servers = [hung, good], timeout = 10: the good server gets the challenge within
    connect_timeout (5 s by default; it took 15 s, after the deadline) and the login succeeds."""
    hung = HungServer()
    try:
        path = etc.conf("i9-failover", 'timeout = 10\nprompt = "never"\n')
        text = path.read_text().replace(
            f'server = "{server.url}"', f'servers = ["{hung.url}", "{server.url}"]'
        )
        path.write_text(text)
        service = etc.service("i9-failover", path)
        mark = syslog.mark()
        started = time.monotonic()
        p = Pamtester(service, users["alice"])
        code = p.expect_code()
        reached = time.monotonic() - started
        assert reached < 7.0, f"good server reached after {reached:.1f} s"
        challenge = devices["alice"].wait_pending()
        devices["alice"].approve(challenge["id"], code)
        status, out = p.finish()
        assert status == 0 and OK in out, out
        assert_syslog(syslog, mark, "approved", users["alice"], service)
    finally:
        hung.close()


# ---------------------------------------------------------------- item 9


@pytest.mark.parametrize("case", ["ca-writable", "pins-dir-writable", "pin-file-not-root"])
def test_issue9_item9_ca_file_and_pinned_keys_are_checked(syslog, etc, users, case):
    pins = ETC / f"i9-pins-{case}"
    pins.mkdir(mode=0o755, exist_ok=True)
    os.chmod(pins, 0o755)
    if case == "ca-writable":
        ca, _ = openssl_cert(ETC, "i9-ca-writable")
        os.chmod(ca, 0o666)
        extra, needle = f'ca_file = "{ca}"\n', "chmod go-w"
    elif case == "pins-dir-writable":
        os.chmod(pins, 0o777)
        extra, needle = f'authorized_devices = "{pins}"\n', "chmod go-w"
    else:
        pin = pins / users["alice"]
        pin.write_text(f"ed25519 {b64url(bytes(range(32)))}\n")
        os.chmod(pin, 0o644)
        os.chown(pin, 65534, 0)
        extra, needle = f'authorized_devices = "{pins}"\n', "not root"
    service = etc.service(f"i9-{case}", etc.conf(f"i9-{case}", extra))
    mark = syslog.mark()
    status, out = Pamtester(service, users["alice"]).finish()
    assert status != 0 and OK not in out, out
    assert SERVICE_ERR in out, out
    _f, _s, line = syslog.wait_for(mark, r"pam_push: .*outcome=config_error")
    assert needle in line, line


# ---------------------------------------------------------------- item 10


@pytest.mark.parametrize("spelling", ["CORP\\{user}", "{USER}@corp.example", "{USER}"])
def test_issue9_item10_user_map_strip_domain(syslog, etc, users, devices, spelling):
    """user_map = "strip_domain": every spelling of pa_alice pushes to pa_alice's device."""
    name = spelling.format(user=users["alice"], USER=users["alice"].upper())
    service = etc.service(
        "i9-usermap", etc.conf("i9-usermap", 'user_map = "strip_domain"\nprompt = "always"\n')
    )
    mark = syslog.mark()
    p = Pamtester(service, name)
    code = p.expect_code()
    challenge = devices["alice"].wait_pending()
    assert challenge["user"] == users["alice"], challenge
    devices["alice"].approve(challenge["id"], code)
    p.child.sendline("")
    status, out = p.finish()
    assert status == 0 and OK in out, out
    assert_syslog(syslog, mark, "approved", users["alice"], service)


# ---------------------------------------------------------------- item 14


def test_issue9_item14_server_text_is_escaped_and_bad_codes_refused(syslog, etc, users):
    """A scripted server sends a device name with an ANSI escape and U+202E: the prompt shows
    them as visible escapes. A code "4\u202e2" refuses the login before anything is shown."""
    answers = {"code": "42"}

    def handler(method, path, body):
        if method == "POST":
            return 201, created_answer(body, "Pixel\x1b[2J\u202e7", answers["code"])
        return 200, json.dumps(
            {"id": "chal-issue9", "state": "cancelled", "expires_at": "2026-01-01T00:01:00Z"}
        )

    fake = FakeServer(handler)
    try:
        service = etc.service(
            "i9-text", etc.conf("i9-text", 'prompt = "always"\n', server_url=fake.url)
        )
        p = Pamtester(service, users["alice"])
        p.child.expect("press Enter")
        p.child.sendline("c")
        status, out = p.finish()
        assert status != 0, out
        assert "\x1b[2J" not in out and "\u202e" not in out, repr(out)
        assert "Pixel\\u{001B}[2J\\u{202E}7" in out, repr(out)
        assert any(m == "DELETE" for m, _, _ in fake.requests), "cancelled"

        answers["code"] = "4\u202e2"
        mark = syslog.mark()
        status, out = Pamtester(service, users["alice"]).finish()
        assert status != 0 and OK not in out, out
        assert "type " not in out and "\u202e" not in out, repr(out)
        _f, _s, line = syslog.wait_for(mark, r"pam_push: .*outcome=error")
        assert "digits" in line, line
    finally:
        fake.close()


# ---------------------------------------------------------------- item 17


@pytest.mark.parametrize("bad", ["\ufeff", "\u00a0", "\u200b"])
def test_issue9_item17_api_key_with_hidden_character_is_a_config_error(syslog, etc, users, bad):
    """An API key file with a BOM, a no-break or a zero-width space, a dead server and
    `safe`: a config error naming the file (it let everyone in as "unreachable")."""
    key = ETC / "i9-api-key-bad"
    key.write_text(bad + "rp1.secret" + ("\u00a0" if bad == "\u00a0" else "") + "\n")
    os.chmod(key, 0o600)
    service = etc.service(
        "i9-badkey",
        etc.conf(
            "i9-badkey",
            'server_unreachable = "safe"\n',
            server_url=dead_url(),
            api_key_line=f'api_key_file = "{key}"',
        ),
    )
    mark = syslog.mark()
    status, out = Pamtester(service, users["alice"]).finish()
    assert status != 0 and OK not in out, out
    assert SERVICE_ERR in out, out
    _f, _s, line = syslog.wait_for(mark, r"pam_push: .*outcome=config_error")
    assert str(key) in line and "printable ASCII" in line, line


# ---------------------------------------------------------------- item 19


def test_issue9_item19_account_and_password_stacks_fail_closed(syslog, etc, users):
    """pam_push by mistake in the account or password stack: logged, and refused (it returned
    PAM_IGNORE, so pam_permit after it let everything through)."""
    conf = etc.conf("i9-stacks")
    svc = "pushauth-test-i9-stacks"
    (PAMD / svc).write_text(
        "auth required pam_permit.so\n"
        f"account required {MODULE} conf={conf}\n"
        "account required pam_permit.so\n"
        f"password required {MODULE} conf={conf}\n"
        "password required pam_permit.so\n"
    )
    etc.services.append(svc)
    for op, stack in (("acct_mgmt", "account"), ("chauthtok", "password")):
        mark = syslog.mark()
        res = run("pamtester", "-v", svc, users["alice"], op, check=False)
        out = res.stdout + res.stderr
        assert res.returncode != 0, out
        assert "successfully" not in out, out
        _f, _s, line = syslog.wait_for(mark, r"pam_push: .*outcome=misconfigured")
        assert f"{stack} stack" in line and svc in line, line


# ---------------------------------------------------------------- items 16 and 18: sudo, su


@pytest.fixture
def password_for_alice(users, backup):
    backup(SUDOERS)
    user = users["alice"]
    run("chpasswd", input=f"{user}:{PASSWORD}\n")
    with open(SUDOERS, "w") as f:
        f.write(f"Defaults:{user} timestamp_timeout=0, passwd_tries=1\n{user} ALL=(root) ALL\n")
    os.chmod(SUDOERS, 0o440)
    yield user
    run("usermod", "-p", "*", user)


@pytest.fixture
def restore_pam():
    """Puts back the system PAM files a test edits, right after the test."""
    saved = {}

    def save(service):
        path = PAMD / service
        if service not in saved:
            saved[service] = path.read_text() if path.exists() else None
        return path

    yield save
    for service, text in saved.items():
        if text is None:
            (PAMD / service).unlink(missing_ok=True)
        else:
            (PAMD / service).write_text(text)


def documented_setup(service, conf, save):
    """Applies packaging/pam.d/<service>.example to /etc/pam.d/<service> as it says: its
    pam_push line after "@include common-auth"."""
    example = REPO / "packaging" / "pam.d" / f"{service}.example"
    assert example.exists(), f"no documented set-up for {service}: {example} is missing"
    lines = [
        line
        for line in example.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines == ["auth required pam_push.so"], lines
    path = save(service)
    text = path.read_text()
    assert "@include common-auth\n" in text, text
    path.write_text(
        text.replace(
            "@include common-auth\n",
            f"@include common-auth\nauth required {MODULE} conf={conf}\n",
            1,
        )
    )


@pytest.mark.parametrize("how", ["sudo -i", "su"])
def test_issue9_item16_sudo_i_and_su_need_the_push(
    syslog, etc, users, devices, password_for_alice, restore_pam, how
):
    """With the documented set-up (README, packaging/pam.d/*.example), `sudo -S -i id` and
    `su - pa_alice -c id` with the right password still need the push: the device denies, the
    command does not run (sudo -i went through PAM service sudo-i with the password alone)."""
    mark = syslog.mark()
    conf = etc.conf("i9-documented", "timeout = 30\n")
    for service in ("sudo", "sudo-i", "su"):
        documented_setup(service, conf, restore_pam)
    user = password_for_alice
    out = io.StringIO()
    if how == "sudo -i":
        child = pexpect.spawn(
            "runuser", ["-u", user, "--", "sudo", "-S", "-i", "id", "-u"],
            encoding="utf-8", timeout=40,
        )
        child.logfile_read = out
        time.sleep(0.5)
        child.sendline(PASSWORD)
        expected_service = "sudo-i"
    else:
        child = pexpect.spawn(
            "runuser", ["-u", users["bob"], "--", "su", "-", user, "-c", "echo su-ok-$((6*7))"],
            encoding="utf-8", timeout=40,
        )
        child.logfile_read = out
        child.expect("Password:")
        child.sendline(PASSWORD)
        # "su -" authenticates through su-l, which includes su.
        expected_service = "su-l"
    child.expect(r"type (\d{3} \d{3}) on your device")
    challenge = devices["alice"].wait_pending(service=expected_service)
    devices["alice"].deny(challenge["id"])
    child.expect(pexpect.EOF)
    child.close()
    text = out.getvalue()
    assert child.exitstatus != 0, text
    assert "su-ok-42" not in text and "\n0\r" not in text, text
    syslog.wait_for(mark, rf"pam_push: .*service={expected_service} .*outcome=denied")


def test_issue9_item18_ctrl_c_in_sudo_cancels_promptly(syslog, etc, users, devices, backup, restore_pam):
    """sudo's default mode (the code as a message, no prompt): Ctrl-C ends sudo within about
    2 s and the challenge is cancelled on the server (it waited for the whole timeout and the
    push stayed open on the device)."""
    backup(SUDOERS)
    user = users["alice"]
    with open(SUDOERS, "w") as f:
        f.write(f"Defaults:{user} timestamp_timeout=0, passwd_tries=1\n{user} ALL=(root) ALL\n")
    os.chmod(SUDOERS, 0o440)
    for mode in ("auto", "always"):
        conf = etc.conf(f"i9-ctrlc-{mode}", f'timeout = 30\nprompt = "{mode}"\n')
        path = restore_pam("sudo")
        path.write_text(
            f"auth required {MODULE} conf={conf}\n"
            "account required pam_permit.so\nsession required pam_permit.so\n"
        )
        mark = syslog.mark()
        out = io.StringIO()
        child = pexpect.spawn(
            "runuser", ["-u", user, "--", "sudo", "/bin/echo", "sudo-ran"],
            encoding="utf-8", timeout=40,
        )
        child.logfile_read = out
        child.expect(r"type (\d{3} \d{3}) on your device")
        code = child.match.group(1)
        challenge = devices["alice"].wait_pending(service="sudo")
        if mode == "always":
            child.sendline("")  # Enter: now waiting for the device, no prompt on screen
        time.sleep(0.5)
        started = time.monotonic()
        child.sendcontrol("c")
        child.expect(pexpect.EOF, timeout=10)
        took = time.monotonic() - started
        child.close()
        assert "sudo-ran" not in out.getvalue()
        assert took < 2.5, f"{mode}: sudo took {took:.1f} s to stop"
        syslog.wait_for(mark, r"pam_push: .*outcome=interrupted")
        # Cancelled on the server: gone from the device, and approving it lets nobody in.
        assert challenge["id"] not in [c["id"] for c in devices["alice"].pending()]
        res = devices["alice"].approve(challenge["id"], code, check=False)
        assert res.returncode != 0
