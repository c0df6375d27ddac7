"""pam_push through libpam with pamtester: one case per outcome, each asserting pamtester's
result text and exit code, the syslog line (facility authpriv), and the server-side effect."""

import io
import json
import os
import re
import shutil
import socket
import urllib.request

import pexpect
import pytest

from conftest import LOG_AUTHPRIV, MODULE, PAMD

OK = "pamtester: successfully authenticated"
AUTH_ERR = "Authentication failure"
AUTHINFO_UNAVAIL = "Authentication service cannot retrieve authentication info"
SERVICE_ERR = "Error in service module"


class Pamtester:
    def __init__(self, service, user, items=(), envs=()):
        args = ["-v"]
        for item in items:
            args += ["-I", item]
        for env in envs:
            args += ["-E", env]
        args += [service, user, "authenticate"]
        self.out = io.StringIO()
        self.child = pexpect.spawn("pamtester", args, encoding="utf-8", timeout=40)
        self.child.logfile_read = self.out

    def expect_code(self):
        self.child.expect(r"type (\d{3} \d{3}) on your device")
        return self.child.match.group(1)

    def finish(self):
        self.child.expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus, self.out.getvalue()


def dead_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def svc(etc, devices):
    """Service names for the common variants."""
    prompt = etc.service("prompt", etc.conf("prompt", 'prompt = "always"\ntimeout = 30\n'))
    return {"prompt": prompt}


def assert_syslog(syslog, mark, outcome, user, service):
    facility, _severity, line = syslog.wait_for(mark, rf"pam_push: .*outcome={outcome}\b")
    assert facility == LOG_AUTHPRIV, line
    assert f"user={user}" in line, line
    assert f"service={service}" in line, line
    assert "pamtester" in line, "the host program's syslog identity is kept: " + line
    return line


def test_approve(syslog, svc, users, devices):
    mark = syslog.mark()
    user = users["alice"]
    p = Pamtester(svc["prompt"], user, items=["rhost=2001:db8::7", "tty=pts/9"])
    code = p.expect_code()
    assert "Approve on Pixel 7" in p.out.getvalue()
    challenge = devices["alice"].wait_pending()
    ctx = challenge["context"]
    assert ctx["service"] == svc["prompt"]
    assert ctx["rhost"] == "2001:db8::7"
    assert ctx["tty"] == "pts/9"
    assert ctx["host"] == socket.gethostname()
    devices["alice"].approve(challenge["id"], code)
    p.child.sendline("")
    status, out = p.finish()
    assert OK in out, out
    assert status == 0
    line = assert_syslog(syslog, mark, "approved", user, svc["prompt"])
    assert f"challenge={challenge['id']}" in line
    assert "rhost=2001:db8::7" in line
    assert 'device="Pixel 7"' in line
    shown = line.split("challenge=")[0].split("device=")[1]
    assert code not in shown and code.replace(" ", "") not in shown, "no code in the log"


def test_ipv4_rhost_and_ssh_key_context(syslog, svc, users, devices):
    """SSH_AUTH_INFO_0 (as sshd puts it in the PAM environment) becomes a key fingerprint."""
    mark = syslog.mark()
    blob = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    p = Pamtester(
        svc["prompt"],
        users["alice"],
        items=["rhost=192.0.2.7"],
        envs=[f"SSH_AUTH_INFO_0=publickey ssh-ed25519 {blob}"],
    )
    code = p.expect_code()
    challenge = devices["alice"].wait_pending()
    assert challenge["context"]["rhost"] == "192.0.2.7"
    assert re.fullmatch(r"ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}", challenge["context"]["ssh_key"])
    devices["alice"].approve(challenge["id"], code)
    p.child.sendline("")
    status, out = p.finish()
    assert status == 0 and OK in out, out
    assert_syslog(syslog, mark, "approved", users["alice"], svc["prompt"])


def test_info_mode_waits_without_prompt(syslog, etc, users, devices):
    """prompt = auto outside sshd: the code comes as a message and nothing is asked."""
    service = etc.service("auto", etc.conf("auto", "timeout = 30\n"))
    mark = syslog.mark()
    p = Pamtester(service, users["alice"])
    code = p.expect_code()
    assert "Waiting up to 30 s" in p.out.getvalue()
    challenge = devices["alice"].wait_pending()
    devices["alice"].approve(challenge["id"], code)
    # No Enter is sent: the module returns on the approval alone.
    status, out = p.finish()
    print(out)
    assert status == 0 and OK in out, out
    assert "press Enter" not in out
    assert_syslog(syslog, mark, "approved", users["alice"], service)


def test_deny(syslog, svc, users, devices):
    mark = syslog.mark()
    p = Pamtester(svc["prompt"], users["alice"])
    p.expect_code()
    challenge = devices["alice"].wait_pending()
    devices["alice"].deny(challenge["id"])
    p.child.sendline("")
    status, out = p.finish()
    print(out, "exit", status)
    assert AUTH_ERR in out and OK not in out, out
    assert status != 0
    assert "denied on the device" in out
    assert_syslog(syslog, mark, "denied", users["alice"], svc["prompt"])


def test_wrong_code(syslog, svc, users, devices):
    mark = syslog.mark()
    p = Pamtester(svc["prompt"], users["alice"])
    code = p.expect_code()
    # A wrong code of the right length (each digit moved by one, as shown: "482 913").
    wrong = "".join(c if c == " " else str((int(c) + 1) % 10) for c in code)
    challenge = devices["alice"].wait_pending()
    devices["alice"].approve(challenge["id"], wrong)
    p.child.sendline("")
    status, out = p.finish()
    assert AUTH_ERR in out and OK not in out, out
    assert status != 0
    assert_syslog(syslog, mark, "code_mismatch", users["alice"], svc["prompt"])


def test_issue11_a_typo_on_the_device_is_refused_locally_and_the_login_still_succeeds(
    syslog, svc, users, devices
):
    """The prompt shows six digits in two groups; the device CLI refuses five digits without
    sending them (the one attempt is not spent), then the code typed without the space approves."""
    mark = syslog.mark()
    p = Pamtester(svc["prompt"], users["alice"])
    code = p.expect_code()
    assert re.fullmatch(r"\d{3} \d{3}", code), code
    challenge = devices["alice"].wait_pending()
    assert challenge["code_length"] == 6
    typo = devices["alice"].approve(challenge["id"], code.replace(" ", "")[:-1], check=False)
    assert typo.returncode != 0
    assert "has 6 digits; you typed 5" in typo.stderr and "nothing was sent" in typo.stderr, typo.stderr
    assert [c["id"] for c in devices["alice"].pending()] == [challenge["id"]], "still open"
    devices["alice"].approve(challenge["id"], code.replace(" ", ""))
    p.child.sendline("")
    status, out = p.finish()
    assert status == 0 and OK in out, out
    assert_syslog(syslog, mark, "approved", users["alice"], svc["prompt"])


def test_report(syslog, etc, users, devices):
    service = etc.service("report", etc.conf("report", 'prompt = "always"\n'))
    mark = syslog.mark()
    p = Pamtester(service, users["rep"])
    p.expect_code()
    challenge = devices["rep"].wait_pending()
    devices["rep"].report(challenge["id"])
    p.child.sendline("")
    status, out = p.finish()
    assert AUTH_ERR in out and OK not in out, out
    assert status != 0
    assert_syslog(syslog, mark, "reported", users["rep"], service)
    # The report locks further pushes to the user.
    mark = syslog.mark()
    p = Pamtester(service, users["rep"])
    # No push: the prompt offers a backup code instead (issue 12); Enter refuses.
    p.child.expect("pushes to this account are paused. Type a backup code")
    p.child.sendline("")
    status, out = p.finish()
    assert status != 0 and AUTH_ERR in out, out
    assert "pushes to this user are paused" in out, out
    assert_syslog(syslog, mark, "rate_limited", users["rep"], service)


def test_expiry(syslog, etc, users, devices):
    service = etc.service("expiry", etc.conf("expiry", 'prompt = "never"\ntimeout = 4\n'))
    mark = syslog.mark()
    p = Pamtester(service, users["alice"])
    p.expect_code()
    assert devices["alice"].wait_pending()["id"]
    status, out = p.finish()
    assert AUTH_ERR in out and OK not in out, out
    assert "expired" in out
    assert_syslog(syslog, mark, "expired", users["alice"], service)
    assert devices["alice"].pending() == []


def test_cancel(syslog, svc, users, devices):
    mark = syslog.mark()
    p = Pamtester(svc["prompt"], users["alice"])
    p.expect_code()
    challenge = devices["alice"].wait_pending()
    p.child.sendline("c")
    status, out = p.finish()
    assert AUTH_ERR in out and OK not in out, out
    assert status != 0
    line = assert_syslog(syslog, mark, "cancelled_by_user", users["alice"], svc["prompt"])
    assert f"challenge={challenge['id']}" in line
    # Cancelled on the server: the device no longer sees it, and cannot approve it.
    assert devices["alice"].pending() == []
    res = devices["alice"].approve(challenge["id"], "123456", check=False)
    assert res.returncode != 0


def test_server_down_secure(syslog, etc, users, devices):
    service = etc.service("down-secure", etc.conf("down-secure", server_url=dead_url()))
    mark = syslog.mark()
    status, out = Pamtester(service, users["alice"]).finish()
    assert AUTHINFO_UNAVAIL in out and OK not in out, out
    assert status != 0
    assert_syslog(syslog, mark, "unreachable_denied", users["alice"], service)


def test_server_down_safe(syslog, etc, users, devices):
    service = etc.service(
        "down-safe",
        etc.conf("down-safe", 'server_unreachable = "safe"\n', server_url=dead_url()),
    )
    mark = syslog.mark()
    status, out = Pamtester(service, users["alice"]).finish()
    assert OK in out, out
    assert status == 0
    _f, severity, _line = syslog.wait_for(mark, r"outcome=unreachable_allowed")
    assert severity == 4, "logged as a warning"


def test_missing_config(syslog, etc, users):
    service = etc.service("missing", "/etc/pushauth-test/does-not-exist.conf")
    mark = syslog.mark()
    status, out = Pamtester(service, users["alice"]).finish()
    assert OK not in out and SERVICE_ERR in out, out
    assert status != 0
    _f, _s, line = syslog.wait_for(mark, r"pam_push: .*outcome=config_error")
    assert "does-not-exist.conf is missing" in line


def test_missing_default_config(syslog, etc, users, backup):
    """No conf= and no /etc/pam_push.conf: refused, never let in."""
    backup("/etc/pam_push.conf")
    if os.path.exists("/etc/pam_push.conf"):
        os.unlink("/etc/pam_push.conf")
    svc = "pushauth-test-default"
    (PAMD / svc).write_text(f"auth required {MODULE}\nauth required pam_permit.so\n")
    etc.services.append(svc)
    mark = syslog.mark()
    status, out = Pamtester(svc, users["alice"]).finish()
    assert OK not in out and status != 0, out
    _f, _s, line = syslog.wait_for(mark, r"pam_push: .*outcome=config_error")
    assert "/etc/pam_push.conf is missing" in line


@pytest.mark.parametrize(
    "case,needle",
    [
        ("world-writable", "chmod go-w"),
        ("inline-key-world-readable", "chmod 600"),
        ("key-file-readable", "chmod 600"),
        ("not-root", "not root"),
        ("malformed", "is malformed"),
    ],
)
def test_bad_config(syslog, etc, users, case, needle):
    if case == "world-writable":
        conf = etc.conf("bad-ww", mode=0o666)
    elif case == "inline-key-world-readable":
        conf = etc.conf("bad-inline", mode=0o644, api_key_line='api_key = "not-a-real-key"')
    elif case == "key-file-readable":
        key = etc.api_key.with_name("api-key-readable")
        shutil.copy(etc.api_key, key)
        os.chmod(key, 0o644)
        conf = etc.conf("bad-keyfile", api_key_line=f'api_key_file = "{key}"')
    elif case == "not-root":
        conf = etc.conf("bad-owner")
        os.chown(conf, 65534, 0)
    else:
        conf = etc.conf("bad-toml", extra="timeout = = 3\n")
    service = etc.service(f"bad-{case}", conf)
    mark = syslog.mark()
    status, out = Pamtester(service, users["alice"]).finish()
    assert OK not in out and SERVICE_ERR in out, out
    assert status != 0
    _f, _s, line = syslog.wait_for(mark, r"pam_push: .*outcome=config_error")
    assert needle in line, line


def test_unknown_user(syslog, svc, users):
    mark = syslog.mark()
    status, out = Pamtester(svc["prompt"], users["bob"]).finish()
    assert AUTH_ERR in out and OK not in out, out
    assert status != 0
    assert "no enrolled device" in out
    assert_syslog(syslog, mark, "unknown_user_denied", users["bob"], svc["prompt"])


def test_unknown_user_ignore_policy(syslog, etc, users):
    service = etc.service("nodev-ignore", etc.conf("nodev-ignore", 'no_device = "ignore"\n'))
    mark = syslog.mark()
    status, out = Pamtester(service, users["bob"]).finish()
    # PAM_IGNORE: the rest of the stack (pam_permit here) decides.
    assert OK in out and status == 0, out
    assert_syslog(syslog, mark, "unknown_user_ignored", users["bob"], service)


def test_user_outside_groups(syslog, etc, users, devices):
    service = etc.service("groups", etc.conf("groups", 'groups = ["pa_push"]\nprompt = "always"\n'))
    # carol is enrolled but not in pa_push: no push at all, the rest of the stack decides.
    mark = syslog.mark()
    status, out = Pamtester(service, users["carol"]).finish()
    assert OK in out and status == 0, out
    assert "type " not in out
    assert devices["carol"].pending() == []
    assert_syslog(syslog, mark, "not_required", users["carol"], service)
    # With a failing rest of the stack, PAM_IGNORE lets nobody in on its own.
    deny = etc.service(
        "groups-deny",
        etc.conf("groups-deny", 'groups = ["pa_push"]\n'),
        rest_of_stack="auth required pam_deny.so\n",
    )
    status, out = Pamtester(deny, users["carol"]).finish()
    assert OK not in out and status != 0, out
    # alice (in pa_push) still gets the push.
    p = Pamtester(service, users["alice"])
    code = p.expect_code()
    challenge = devices["alice"].wait_pending()
    devices["alice"].approve(challenge["id"], code)
    p.child.sendline("")
    status, out = p.finish()
    assert OK in out and status == 0, out


def test_pinned_key_mismatch(syslog, server, etc, users, devices):
    pins = etc.api_key.with_name("authorized_devices")
    pins.mkdir(exist_ok=True)
    # A valid key that is not alice's device: carol's, as the RP API lists it.
    req = urllib.request.Request(
        f"{server.url}/v1/users/{users['carol']}/devices",
        headers={"Authorization": "Bearer " + etc.api_key.read_text().strip()},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        carol_key = json.load(r)["devices"][0]["public_key"]
    (pins / users["alice"]).write_text(f"ed25519 {carol_key} carol's phone\n")
    service = etc.service(
        "pinned", etc.conf("pinned", f'authorized_devices = "{pins}"\nprompt = "always"\n')
    )
    mark = syslog.mark()
    p = Pamtester(service, users["alice"])
    code = p.expect_code()
    challenge = devices["alice"].wait_pending()
    devices["alice"].approve(challenge["id"], code)
    p.child.sendline("")
    status, out = p.finish()
    assert AUTH_ERR in out and OK not in out, out
    assert status != 0
    line = assert_syslog(syslog, mark, "untrustworthy_answer", users["alice"], service)
    assert "pinned" in line
