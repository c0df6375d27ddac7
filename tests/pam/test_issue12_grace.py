"""Issue 12, the grace window, through a real sshd, real sudo and pamtester: after one approved
push, an Ansible-like burst of SSH logins with the same key from the same address takes no
further push; another key or address pushes; ending the windows (on the device, on the server)
makes the next login push; sudo without sudo_grace pushes every time; and a server that claims a
grace window this host never saw approved is refused."""

import http.server
import io
import json
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pexpect
import pytest

from conftest import MODULE, PAMD, run, sshd_running, write_sshd_stack

GRACE = 120
SUDOERS = "/etc/sudoers.d/pushauth-test"


@pytest.fixture(scope="module")
def state_dir():
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="pushauth-grace-state-"))
    yield tmp / "state"
    shutil.rmtree(tmp, ignore_errors=True)


def grace_conf(etc, name, state_dir, extra=""):
    return etc.conf(
        name, f'timeout = 30\ngrace_secs = {GRACE}\nstate_dir = "{state_dir}"\n{extra}'
    )


def saved(paths):
    """The texts of `paths` now (None: missing), to put back with `restore`."""
    return {p: (pathlib.Path(p).read_text() if os.path.exists(p) else None) for p in paths}


def restore(texts):
    """Puts back what `saved` read, so the suites after this one find the system files."""
    for path, text in texts.items():
        if text is None:
            pathlib.Path(path).unlink(missing_ok=True)
        else:
            pathlib.Path(path).write_text(text)


def sshd_stack(conf):
    """/etc/pam.d/sshd with pam_push reading `conf`."""
    write_sshd_stack(f" conf={conf}")


@pytest.fixture(scope="module")
def sshd(etc, users, devices, backup, state_dir):
    """sshd on 127.0.0.1 (publickey, then keyboard-interactive:pam with pam_push asking for a
    120 s grace window); alice has two keys."""
    backup("/etc/pam.d/sshd")
    before = saved(["/etc/pam.d/sshd"])
    conf = grace_conf(etc, "grace-sshd", state_dir)
    sshd_stack(conf)
    with sshd_running(
        "pushauth-grace-sshd-", [users["alice"]], keys=("key1", "key2"), extra="MaxStartups 100\n"
    ) as running:
        yield {**running, "conf": conf}
    restore(before)


@pytest.fixture(scope="module")
def password_sshd(sshd, users):
    """A second sshd on the same PAM stack with keyboard-interactive:pam alone (no public key,
    as a password-only sshd): pam_push cannot learn an SSH key."""
    with sshd_running(
        "pushauth-grace-pw-", [users["alice"]], methods="keyboard-interactive:pam"
    ) as running:
        yield {**running, "conf": sshd["conf"]}


def ssh_args(sshd, user, key="key1", source="127.0.0.1"):
    return [
        "-p",
        str(sshd["port"]),
        "-i",
        str(sshd["tmp"] / key),
        "-b",
        source,
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "NumberOfPasswordPrompts=1",
        f"{user}@127.0.0.1",
    ]


def pushed_login(sshd, user, device, key="key1", source="127.0.0.1"):
    """A login that must take a push: the code comes in the prompt, the device approves."""
    child = pexpect.spawn(
        "ssh", ["-tt", *ssh_args(sshd, user, key, source)], encoding="utf-8", timeout=40
    )
    out = io.StringIO()
    child.logfile_read = out
    child.expect(r"type (\d{3} \d{3}) on your device")
    code = child.match.group(1)
    challenge = device.wait_pending(service="sshd")
    device.approve(challenge["id"], code)
    child.sendline("")
    child.sendline("echo pushauth-ok-$((6*7)); exit")
    child.expect("pushauth-ok-42")
    child.expect(pexpect.EOF)
    child.close()
    return challenge


def cancelled_push(sshd, user, key="key1", source="127.0.0.1"):
    """A login that must take a push (the code prompt comes); cancelled with "c"."""
    child = pexpect.spawn(
        "ssh", ["-tt", *ssh_args(sshd, user, key, source)], encoding="utf-8", timeout=40
    )
    child.expect(r"type (\d{3} \d{3}) on your device")
    child.sendline("c")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus != 0


def quiet_login(sshd, user, key="key1", source="127.0.0.1"):
    """A login with no terminal at all (as Ansible makes them): succeeds only if no push and no
    prompt is needed. Returns (exit status, output)."""
    res = subprocess.run(
        ["ssh", *ssh_args(sshd, user, key, source), "-o", "ConnectTimeout=10", "echo", "grace-ok"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )
    return res.returncode, res.stdout + res.stderr


def audit_since(server, user, since):
    """(kind, challenge) of the user's audit events with id > since, oldest first."""
    out = run(
        *server.admin, "audit", "--limit", "1000", "--user", user, *server.store_args
    ).stdout
    events = []
    for line in out.splitlines():
        fields = line.split("\t")
        if len(fields) < 3 or not fields[0].isdigit() or int(fields[0]) <= since:
            continue
        words = fields[2].split()
        challenge = next((w.split("=", 1)[1] for w in words if w.startswith("challenge=")), None)
        events.append((words[0], challenge))
    return list(reversed(events))


def last_audit_id(server, user):
    out = run(*server.admin, "audit", "--limit", "1", "--user", user, *server.store_args).stdout
    ids = [int(l.split("\t")[0]) for l in out.splitlines() if l[:1].isdigit()]
    return ids[0] if ids else 0


def kinds(events, kind):
    return [c for k, c in events if k == kind]


def test_issue12_ssh_burst_takes_one_push_and_ends_on_request(
    syslog, server, sshd, users, devices
):
    user, phone = users["alice"], devices["alice"]
    since = last_audit_id(server, user)
    started = time.monotonic()
    first = pushed_login(sshd, user, phone)
    push_secs = time.monotonic() - started
    mark = syslog.mark()
    started = time.monotonic()
    for i in range(20):
        status, text = quiet_login(sshd, user)
        assert status == 0 and "grace-ok" in text, f"login {i}: {status} {text}"
    burst_secs = time.monotonic() - started
    events = audit_since(server, user, since)
    assert kinds(events, "challenge_created") == [first["id"]], events
    assert len(kinds(events, "grace_login")) == 20, events
    assert phone.pending() == []
    _f, _s, line = syslog.wait_for(mark, r"pam_push: .*outcome=grace\b")
    assert f"of {first['id']}" in line, line
    print(f"\nissue12 burst: 20 SSH logins in {burst_secs:.2f} s with grace "
          f"({burst_secs / 20 * 1000:.0f} ms each); the approved push login took {push_secs:.2f} s")

    # Another key, or another address, is another login: a push.
    since = last_audit_id(server, user)
    second = pushed_login(sshd, user, phone, key="key2")
    third = pushed_login(sshd, user, phone, source="127.0.0.2")
    events = audit_since(server, user, since)
    assert kinds(events, "challenge_created") == [second["id"], third["id"]], events
    assert quiet_login(sshd, user, key="key2")[0] == 0
    assert quiet_login(sshd, user, source="127.0.0.2")[0] == 0

    # "End all grace windows" on the device: every window of the user ends at once.
    out = phone.cli("end-grace").stdout
    assert "ended every grace window" in out, out
    for key, source in (("key1", "127.0.0.1"), ("key2", "127.0.0.1"), ("key1", "127.0.0.2")):
        cancelled_push(sshd, user, key=key, source=source)
    # A new approval opens a window again; the server's "grace end" ends it.
    pushed_login(sshd, user, phone)
    assert quiet_login(sshd, user)[0] == 0
    out = run(*server.admin, "grace", "end", user, *server.store_args).stdout
    assert "ended every grace window" in out, out
    cancelled_push(sshd, user)
    events = audit_since(server, user, since)
    assert len(kinds(events, "grace_ended")) == 2, events
    assert len(kinds(events, "challenge_cancelled")) == 4, events


def test_issue12_burst_without_grace_pushes_every_time(server, sshd, etc, users, devices, state_dir):
    """The same burst with grace off: 20 pushes, each approved by the device CLI (a person
    would take seconds for each)."""
    user, phone = users["alice"], devices["alice"]
    sshd_stack(etc.conf("nograce-sshd", "timeout = 30\n"))
    try:
        since = last_audit_id(server, user)
        started = time.monotonic()
        for _ in range(20):
            pushed_login(sshd, user, phone)
        secs = time.monotonic() - started
    finally:
        sshd_stack(sshd["conf"])
    events = audit_since(server, user, since)
    assert len(kinds(events, "challenge_created")) == 20, events
    assert kinds(events, "grace_login") == []
    print(f"\nissue12 burst: 20 SSH logins in {secs:.2f} s without grace "
          f"({secs / 20 * 1000:.0f} ms each, approved by a script)")


def test_issue12_password_only_sshd_takes_no_grace(
    server, sshd, password_sshd, etc, users, devices, state_dir
):
    """Review finding: sshd without a key (password only, or no ExposeAuthInfo) keyed grace on
    user, service, host and address alone, so anyone with the password from the same address
    rode on the person's approval. Without `grace_without_key`, each such login pushes."""
    alice = users["alice"]
    key = "client_ed25519"
    since = last_audit_id(server, alice)
    pushed_login(password_sshd, alice, devices["alice"], key=key)
    # Right after the approval, from the same address: a push again (cancelled here).
    cancelled_push(password_sshd, alice, key=key)
    events = audit_since(server, alice, since)
    assert kinds(events, "grace_login") == [], events
    assert len(kinds(events, "challenge_created")) == 2, events
    # A host that accepts the risk says so: then the window applies without a key.
    try:
        sshd_stack(grace_conf(etc, "grace-nokey", state_dir, "grace_without_key = true\n"))
        pushed_login(password_sshd, alice, devices["alice"], key=key)
        status, out = quiet_login(password_sshd, alice, key=key)
        assert status == 0 and "grace-ok" in out, out
    finally:
        sshd_stack(sshd["conf"])


@pytest.fixture
def sudo(etc, users, backup, state_dir):
    backup("/etc/pam.d/sudo")
    backup(SUDOERS)
    before = saved(["/etc/pam.d/sudo", SUDOERS])
    user = users["alice"]
    with open(SUDOERS, "w") as f:
        f.write(f"Defaults:{user} timestamp_timeout=0, passwd_tries=1\n{user} ALL=(root) ALL\n")
    os.chmod(SUDOERS, 0o440)

    def stack(extra=""):
        conf = grace_conf(etc, "grace-sudo", state_dir, extra)
        (PAMD / "sudo").write_text(
            f"auth required {MODULE} conf={conf}\n"
            "account required pam_permit.so\n"
            "session required pam_permit.so\n"
        )

    yield user, stack
    restore(before)
    if os.path.exists(SUDOERS):
        os.chmod(SUDOERS, 0o440)


def sudo_once(user, device, expect_push):
    child = pexpect.spawn(
        "runuser",
        ["-u", user, "--", "sudo", "/bin/sh", "-c", "echo sudo-ok-$((6*7))"],
        encoding="utf-8",
        timeout=40,
    )
    out = io.StringIO()
    child.logfile_read = out
    if expect_push:
        child.expect(r"type (\d{3} \d{3}) on your device")
        code = child.match.group(1)
        challenge = device.wait_pending(service="sudo")
        device.approve(challenge["id"], code)
    child.expect("sudo-ok-42")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, out.getvalue()
    assert ("on your device" in out.getvalue()) == expect_push, out.getvalue()


def test_issue12_sudo_pushes_every_time_without_sudo_grace(server, sudo, devices):
    user, stack = sudo
    stack()
    since = last_audit_id(server, user)
    for _ in range(3):
        sudo_once(user, devices["alice"], expect_push=True)
    events = audit_since(server, user, since)
    assert len(kinds(events, "challenge_created")) == 3, events
    assert kinds(events, "grace_login") == []
    # With sudo_grace = true, the second sudo rides on the first approval.
    stack("sudo_grace = true\n")
    since = last_audit_id(server, user)
    sudo_once(user, devices["alice"], expect_push=True)
    sudo_once(user, devices["alice"], expect_push=False)
    events = audit_since(server, user, since)
    assert len(kinds(events, "challenge_created")) == 1, events
    assert len(kinds(events, "grace_login")) == 1, events


class ForgingServer(http.server.BaseHTTPRequestHandler):
    """A pushauthd that is broken into: every new challenge is "approved by grace" of `of`."""

    of = "never-approved-here-0000000000000"
    seen = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ForgingServer.seen.append(body)
        answer = {
            "id": "forged-challenge-000000000000000",
            "user": body["user"],
            "devices": [],
            "device_info": [],
            "code": None,
            "expires_at": "2099-01-01T00:00:00Z",
            "state": "approved",
            "grace": {"of": ForgingServer.of, "until": "2099-01-01T00:00:00Z"},
        }
        data = json.dumps(answer).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def forger():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ForgingServer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def pamtester(service, user, rhost):
    res = subprocess.run(
        ["pamtester", "-v", "-I", f"rhost={rhost}", service, user, "authenticate"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    return res.returncode, res.stdout + res.stderr


def test_issue12_a_forged_server_grace_is_refused(
    syslog, etc, users, devices, forger, state_dir, sshd
):
    user = users["alice"]
    if not (state_dir / "grace" / user).exists():
        pushed_login(sshd, user, devices["alice"])
    conf = etc.conf(
        "grace-forged",
        f'timeout = 10\ngrace_secs = {GRACE}\nstate_dir = "{state_dir}"\n',
        server_url=forger,
    )
    service = etc.service("grace-forged", conf)
    # A challenge this host never saw approved.
    mark = syslog.mark()
    status, text = pamtester(service, user, "192.0.2.9")
    assert status != 0 and "successfully authenticated" not in text, text
    assert "could not be verified" in text, text
    _f, _s, line = syslog.wait_for(mark, r"pam_push: .*outcome=untrustworthy_answer")
    assert "never saw approved" in line, line
    assert ForgingServer.seen and ForgingServer.seen[-1]["grace_secs"] == GRACE
    # A challenge this host did record (an SSH login's, from the first test or approved now),
    # claimed for another login (another service and address): refused too.
    records = (state_dir / "grace" / user).read_text().split()
    assert records and records[0] == "v1", records
    ForgingServer.of = records[1]
    mark = syslog.mark()
    status, text = pamtester(service, user, "192.0.2.9")
    assert status != 0 and "successfully authenticated" not in text, text
    _f, _s, line = syslog.wait_for(mark, r"pam_push: .*outcome=untrustworthy_answer")
    assert "another login" in line, line
    # The record is root's alone.
    mode = os.stat(state_dir / "grace" / user).st_mode & 0o777
    assert mode == 0o600 and (os.stat(state_dir / "grace").st_mode & 0o777) == 0o700
