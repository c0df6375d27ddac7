"""A real sshd (Debian's OpenSSH 9.2) on 127.0.0.1 with publickey + keyboard-interactive:pam,
driven by the ssh client: the code comes inside the prompt, the device approves, Enter, shell."""

import io

import pexpect
import pytest

from conftest import LOG_AUTHPRIV, PAM_CONF, run, sshd_running, write_sshd_stack


@pytest.fixture(scope="module")
def sshd(etc, users, devices, backup):
    # With PUSHAUTH_PAM_CONF (installed packages): the installed config, and the PAM line as
    # documented for /etc/pam.d/sshd (no conf= when it is the default file).
    conf = PAM_CONF or etc.conf("sshd", "timeout = 30\n")
    conf_arg = "" if str(conf) == "/etc/pam_push.conf" else f" conf={conf}"
    backup("/etc/pam.d/sshd")
    write_sshd_stack(conf_arg)
    with sshd_running("pushauth-sshd-", [users["alice"]]) as running:
        fingerprint = run("ssh-keygen", "-lf", f"{running['key']}.pub").stdout.split()[1]
        yield {**running, "fingerprint": fingerprint}


def ssh(sshd, user):
    out = io.StringIO()
    child = pexpect.spawn(
        "ssh",
        [
            "-tt",
            "-p",
            str(sshd["port"]),
            "-i",
            str(sshd["key"]),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "NumberOfPasswordPrompts=1",
            f"{user}@127.0.0.1",
        ],
        encoding="utf-8",
        timeout=40,
    )
    child.logfile_read = out
    return child, out


def test_ssh_approved_gets_a_shell(syslog, sshd, users, devices):
    mark = syslog.mark()
    child, out = ssh(sshd, users["alice"])
    child.expect(r"Approve on Pixel 7: type (\d{3} \d{3}) on your device, then press Enter")
    code = child.match.group(1)
    challenge = devices["alice"].wait_pending(service="sshd")
    ctx = challenge["context"]
    assert ctx["service"] == "sshd"
    assert ctx["rhost"] == "127.0.0.1"
    # ExposeAuthInfo: the key that already authenticated, as ssh-keygen prints it.
    assert ctx["ssh_key"] == f"ssh-ed25519 {sshd['fingerprint']}", ctx
    devices["alice"].approve(challenge["id"], code)
    child.sendline("")
    child.sendline("echo pushauth-ok-$((6*7))")
    child.expect("pushauth-ok-42")
    child.sendline("exit")
    child.expect(pexpect.EOF)
    _f, _s, line = syslog.wait_for(mark, r"pam_push: .*outcome=approved")
    assert f"challenge={challenge['id']}" in line
    assert "service=sshd" in line and "rhost=127.0.0.1" in line
    assert _f == LOG_AUTHPRIV
    assert "sshd" in line.split("pam_push:")[0], "sshd's identity: " + line


def test_ssh_denied_gets_no_shell(syslog, sshd, users, devices):
    mark = syslog.mark()
    child, out = ssh(sshd, users["alice"])
    child.expect(r"type (\d{3} \d{3}) on your device")
    challenge = devices["alice"].wait_pending(service="sshd")
    devices["alice"].deny(challenge["id"])
    child.sendline("")
    child.sendline("echo pushauth-ok-$((6*7))")
    child.expect(pexpect.EOF)
    child.close()
    text = out.getvalue()
    assert "pushauth-ok-42" not in text, text
    assert "Permission denied" in text, text
    assert child.exitstatus != 0
    syslog.wait_for(mark, r"pam_push: .*outcome=denied")


def test_ssh_cancel_at_the_prompt(syslog, sshd, users, devices):
    """Typing c at the prompt cancels the challenge on the server, and no shell starts.

    (Ctrl-C or a dropped connection cannot cancel under sshd: sshd kills its PAM process with
    SIGTERM, so the module never runs again; the orphan challenge expires at its TTL and an
    approval of it lets nobody in, since the login it belonged to is gone.)"""
    mark = syslog.mark()
    child, out = ssh(sshd, users["alice"])
    child.expect(r"type (\d{3} \d{3}) on your device")
    challenge = devices["alice"].wait_pending(service="sshd")
    child.sendline("c")
    child.sendline("echo pushauth-ok-$((6*7))")
    child.expect(pexpect.EOF)
    child.close()
    assert "pushauth-ok-42" not in out.getvalue()
    assert child.exitstatus != 0
    _f, _s, line = syslog.wait_for(mark, r"pam_push: .*outcome=cancelled_by_user")
    assert f"challenge={challenge['id']}" in line
    assert devices["alice"].pending() == []
