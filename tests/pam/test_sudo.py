"""Real sudo with pam_push in its PAM stack: approved runs the command, denied does not."""

import io
import os

import pexpect
import pytest

from conftest import LOG_AUTHPRIV, MODULE, PAMD

SUDOERS = "/etc/sudoers.d/pushauth-test"


@pytest.fixture(scope="module")
def sudo(etc, users, devices, backup):
    conf = etc.conf("sudo", "timeout = 30\n")
    backup("/etc/pam.d/sudo")
    backup(SUDOERS)
    (PAMD / "sudo").write_text(
        "# pushauth test stack (the system file is restored after the suite)\n"
        f"auth required {MODULE} conf={conf}\n"
        "account required pam_permit.so\n"
        "session required pam_permit.so\n"
    )
    user = users["alice"]
    with open(SUDOERS, "w") as f:
        f.write(
            f"Defaults:{user} timestamp_timeout=0, passwd_tries=1\n"
            f"{user} ALL=(root) ALL\n"
        )
    os.chmod(SUDOERS, 0o440)
    yield user


def sudo_as(user):
    out = io.StringIO()
    child = pexpect.spawn(
        "runuser",
        ["-u", user, "--", "sudo", "/bin/sh", "-c", "echo sudo-ok-$((6*7)) as $(id -u)"],
        encoding="utf-8",
        timeout=40,
    )
    child.logfile_read = out
    return child, out


def test_sudo_approved_runs_the_command(syslog, sudo, devices):
    mark = syslog.mark()
    child, out = sudo_as(sudo)
    # sudo shows messages at once: the code comes as a message, with no prompt.
    child.expect(r"Approve on Pixel 7: type (\d{3} \d{3}) on your device\. Waiting")
    code = child.match.group(1)
    challenge = devices["alice"].wait_pending(service="sudo")
    assert challenge["context"]["service"] == "sudo"
    assert challenge["context"]["command"].startswith("/bin/sh -c echo sudo-ok-"), challenge
    devices["alice"].approve(challenge["id"], code)
    child.expect("sudo-ok-42 as 0")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, out.getvalue()
    facility, _s, line = syslog.wait_for(mark, r"pam_push: .*outcome=approved")
    assert facility == LOG_AUTHPRIV
    assert "service=sudo" in line and f"user={sudo}" in line
    assert f"challenge={challenge['id']}" in line


def test_sudo_denied_does_not_run(syslog, sudo, devices):
    mark = syslog.mark()
    child, out = sudo_as(sudo)
    child.expect(r"type (\d{3} \d{3}) on your device")
    challenge = devices["alice"].wait_pending(service="sudo")
    devices["alice"].deny(challenge["id"])
    child.expect(pexpect.EOF)
    child.close()
    text = out.getvalue()
    assert "sudo-ok-42" not in text, text
    assert child.exitstatus != 0
    assert "denied on the device" in text, text
    syslog.wait_for(mark, r"pam_push: .*outcome=denied")


def test_sudo_ctrl_c_at_the_prompt_cancels(syslog, sudo, etc, devices):
    """With prompt = always, Ctrl-C at sudo's prompt aborts the conversation (sudo's tgetpass
    returns no answer): the module cancels the challenge on the server."""
    conf = etc.conf("sudo-prompt", 'prompt = "always"\ntimeout = 30\n')
    (PAMD / "sudo").write_text(
        f"auth required {MODULE} conf={conf}\n"
        "account required pam_permit.so\n"
        "session required pam_permit.so\n"
    )
    mark = syslog.mark()
    child, out = sudo_as(sudo)
    child.expect(r"type (\d{3} \d{3}) on your device, then press Enter")
    challenge = devices["alice"].wait_pending(service="sudo")
    child.sendcontrol("c")
    child.expect(pexpect.EOF)
    child.close()
    assert "sudo-ok-42" not in out.getvalue()
    assert child.exitstatus != 0
    _f, _s, line = syslog.wait_for(mark, r"pam_push: .*outcome=conversation_aborted")
    assert f"challenge={challenge['id']}" in line
    assert devices["alice"].pending() == []
