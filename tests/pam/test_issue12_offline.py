"""Issue 12, offline codes through a real sshd: an online login fills this host's cache, then
with pushauthd stopped the code from `pushauth-device offline-code` lets the person in once; the
same code again, a user who never logged in here, and the `secure` policy are refused; once
pushauthd is back, the next online login reports the used code (audit row on the server)."""

import json
import os
import pathlib
import shutil
import stat
import tempfile
import time

import pexpect
import pytest

from conftest import run, sshd_running, write_sshd_stack
from test_pamtester import AUTHINFO_UNAVAIL, OK, Pamtester
from test_sshd import ssh

OFFLINE_PROMPT = r"cannot be reached\. Type the offline code your device shows"


@pytest.fixture(scope="module")
def offline_sshd(etc, users, devices, backup):
    state_tmp = pathlib.Path(tempfile.mkdtemp(prefix="pushauth-offline-"))
    state = state_tmp / "state"
    conf = etc.conf(
        "offline", f'timeout = 30\nserver_unreachable = "offline"\nstate_dir = "{state}"\n'
    )
    backup("/etc/pam.d/sshd")
    write_sshd_stack(f" conf={conf}")
    with sshd_running("pushauth-offline-", [users["alice"], users["carol"]]) as running:
        yield {**running, "state": state}
    shutil.rmtree(state_tmp, ignore_errors=True)


def online_login(sshd, user, device):
    child, out = ssh(sshd, user)
    child.expect(r"type (\d{3} \d{3}) on your device")
    code = child.match.group(1)
    challenge = device.wait_pending(service="sshd")
    device.approve(challenge["id"], code)
    child.sendline("")
    child.sendline("echo pushauth-ok-$((6*7))")
    child.expect("pushauth-ok-42")
    child.sendline("exit")
    child.expect(pexpect.EOF)
    return out.getvalue()


def refused(child, out):
    child.expect(pexpect.EOF)
    child.close()
    text = out.getvalue()
    assert "pushauth-ok-42" not in text, text
    assert child.exitstatus != 0
    return text


def test_issue12_offline_codes_through_sshd(syslog, server, etc, offline_sshd, users, devices):
    sshd = offline_sshd
    alice, carol = users["alice"], users["carol"]
    cache = sshd["state"] / "offline" / alice

    # 1. Online: the approval fills the cache (hashes only, root 0600, directory 0700).
    mark = syslog.mark()
    started = time.time()
    online_login(sshd, alice, devices["alice"])
    online_secs = time.time() - started
    _f, _s, line = syslog.wait_for(mark, r"outcome=offline_cache_filled")
    assert "20 new values" in line, line
    st = os.stat(cache)
    assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(sshd["state"] / "offline").st_mode) == 0o700
    held = json.loads(cache.read_text())
    assert len(held["devices"]) == 1
    counters = [v["counter"] for v in held["devices"][0]["values"]]
    assert counters == list(range(1, 21))
    assert all(v["hash"].startswith("$argon2id$") for v in held["devices"][0]["values"])
    print(f"issue12: online sshd login incl. cache fill took {online_secs:.2f} s")

    server.stop()
    try:
        # 2. pushauthd down: the device's offline code lets alice in.
        code = devices["alice"].cli("offline-code").stdout.strip()
        assert len(code.replace(" ", "")) == 6, code
        assert code.replace(" ", "") not in cache.read_text()
        mark = syslog.mark()
        started = time.time()
        child, out = ssh(sshd, alice)
        child.expect(OFFLINE_PROMPT)
        child.sendline(code)
        child.sendline("echo pushauth-ok-$((6*7))")
        child.expect("pushauth-ok-42")
        offline_secs = time.time() - started
        child.sendline("exit")
        child.expect(pexpect.EOF)
        _f, _s, line = syslog.wait_for(mark, r"outcome=offline_code_accepted")
        assert "counter 1" in line, line
        assert code.replace(" ", "") not in " ".join(syslog.since(mark))
        print(f"issue12: offline sshd login took {offline_secs:.2f} s")
        held = json.loads(cache.read_text())
        assert [v["counter"] for v in held["devices"][0]["values"]][0] == 2
        assert held["pending"][0]["counter"] == 1

        # 3. The same code again: refused (each code works once), every attempt logged.
        mark = syslog.mark()
        child, out = ssh(sshd, alice)
        child.expect(OFFLINE_PROMPT)
        child.sendline(code)
        for _ in range(2):
            child.expect(r"Offline code: ")
            child.sendline(code)
        text = refused(child, out)
        assert "not valid here" in text, text
        syslog.wait_for(mark, r"outcome=offline_code_denied")

        # 4. A user who never logged in on this host: refused with a clear message.
        mark = syslog.mark()
        child, out = ssh(sshd, carol)
        text = refused(child, out)
        assert "holds no offline codes for you" in text, text
        syslog.wait_for(mark, rf"user={carol} .*outcome=offline_no_cache_denied")

        # 5. The secure policy is unchanged: refused, no offline prompt.
        svc = etc.service("issue12-secure", etc.conf("issue12-secure", "timeout = 10\n"))
        mark = syslog.mark()
        status, out = Pamtester(svc, alice).finish()
        assert AUTHINFO_UNAVAIL in out and OK not in out and "offline code" not in out, out
        assert status != 0
        syslog.wait_for(mark, r"outcome=unreachable_denied")
    finally:
        server.start()

    # 6. pushauthd back: the next online login reports the used counter first.
    mark = syslog.mark()
    online_login(sshd, alice, devices["alice"])
    _f, _s, line = syslog.wait_for(mark, r"outcome=offline_use_reported")
    assert "counter 1" in line, line
    held = json.loads(cache.read_text())
    assert held["pending"] == []
    # Counter 1 is gone from the server's window too: the cache holds 2..21.
    assert [v["counter"] for v in held["devices"][0]["values"]] == list(range(2, 22))
    audit = run(
        *server.admin, "audit", "--user", alice, "--limit", "200", *server.store_args
    ).stdout
    used = [l for l in audit.splitlines() if "\toffline_code_used" in l]
    assert used and "counter 1 used at" in used[0] and "pam-test" in used[0], audit
