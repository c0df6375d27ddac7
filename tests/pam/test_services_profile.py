"""Issue 9 item 16, package side: with the installed pam-auth-update profile enabled (and the
documented sshd set-up), every service a program authenticates through — sudo, sudo-i, su,
login, sshd — reaches pam_push after the right password, and a deny on the device refuses the
login. Runs only against installed packages (tests/deb/run.sh sets PUSHAUTH_PAM_CONF)."""

import io
import pathlib
import subprocess

import pexpect
import pytest

from conftest import PAM_CONF, PAMD, run

pytestmark = pytest.mark.skipif(
    PAM_CONF is None, reason="needs the installed packages (tests/deb/run.sh)"
)

PASSWORD = "Issue9-Profile-Pw"


@pytest.fixture(scope="module")
def profile(users, backup):
    """The profile enabled as README says, the documented sshd edit, a password for alice."""
    backup("/etc/pam.d/sshd")
    for name in ("common-auth", "common-account", "common-password", "common-session",
                 "common-session-noninteractive"):
        backup(f"/etc/pam.d/{name}")
    run("pam-auth-update", "--enable", "pushauth")
    sshd = PAMD / "sshd"
    # test_sshd.py may have replaced the file already (it is put back after the suite): start
    # from the system's own, as README's edit does.
    original = PAMD / "sshd.pushauth-test-backup"
    text = (original if original.exists() else sshd).read_text()
    assert "@include common-auth\n" in text
    sshd.write_text(text.replace("@include common-auth\n", "auth required pam_push.so\n", 1))
    run("chpasswd", input=f"{users['alice']}:{PASSWORD}\n")
    yield users["alice"]
    run("usermod", "-p", "*", users["alice"])
    run("pam-auth-update", "--disable", "pushauth")


@pytest.mark.parametrize("service", ["sudo", "sudo-i", "login", "sshd", "su"])
def test_issue9_item16_every_service_needs_the_push(syslog, devices, profile, service):
    user = profile
    mark = syslog.mark()
    out = io.StringIO()
    if service == "su":
        # pamtester runs as root, where su's pam_rootok skips authentication: drive the real
        # su (setuid root) as another user instead, as a person would.
        child = pexpect.spawn(
            "runuser", ["-u", "pa_bob", "--", "su", user, "-c", "echo su-ran"],
            encoding="utf-8", timeout=40,
        )
    else:
        child = pexpect.spawn(
            "pamtester", ["-v", service, user, "authenticate"], encoding="utf-8", timeout=40
        )
    child.logfile_read = out
    if service != "sshd":
        child.expect("Password:")
        child.sendline(PASSWORD)
    child.expect(r"type (\d{3} \d{3}) on your device")
    challenge = devices["alice"].wait_pending(service=service)
    devices["alice"].deny(challenge["id"])
    if service == "sshd":
        child.sendline("")
    child.expect(pexpect.EOF)
    child.close()
    text = out.getvalue()
    assert child.exitstatus != 0, text
    assert "successfully authenticated" not in text and "su-ran" not in text, text
    syslog.wait_for(mark, rf"pam_push: .*service={service} .*outcome=denied")
