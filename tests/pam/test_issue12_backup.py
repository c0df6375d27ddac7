"""Issue 12, backup codes through a real sshd (Debian's OpenSSH, publickey +
keyboard-interactive:pam): with no device answering, the person types a backup code at the push
prompt and gets a shell, and is shown the code that replaces it; the same code again, a wrong
code and a pinned user are refused with a clear message and a syslog line that holds no code.
The codes come from `pushauthd backup-codes USER` run on the server's store."""

import os
import re
import time

import pexpect
import pytest

from conftest import ETC, LOG_AUTHPRIV, run, sshd_running, write_sshd_stack
from test_sshd import ssh

CODE = r"[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}"


@pytest.fixture(scope="module")
def sshd12(etc, users, devices, backup):
    # carol has a pinned-key file: only her pinned device's signature may let her in.
    pins = ETC / "i12-pins"
    pins.mkdir(mode=0o755, exist_ok=True)
    (pins / users["carol"]).write_text(
        "ed25519 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8 carol's phone\n"
    )
    os.chmod(pins / users["carol"], 0o644)
    conf = etc.conf("i12-sshd", f'timeout = 30\nauthorized_devices = "{pins}"\n')
    backup("/etc/pam.d/sshd")
    write_sshd_stack(f" conf={conf}")
    with sshd_running("pushauth-sshd12-", [users["alice"], users["carol"]]) as running:
        yield running


def issue_codes(server, user, count):
    out = run(*server.admin, "backup-codes", user, "--count", str(count), *server.store_args).stdout
    assert "keep them offline" in out, out
    codes = re.findall(CODE, out)
    assert len(codes) == count, out
    return codes


def login_with(sshd, user, typed):
    """Types `typed` at the push prompt; returns the child (still open) and its output."""
    child, out = ssh(sshd, user)
    child.expect(r"type \d{3} \d{3} on your device, then press Enter \(or type a backup code")
    child.sendline(typed)
    return child, out


def assert_no_shell(child, out):
    child.sendline("echo pushauth-ok-$((6*7))")
    child.expect(pexpect.EOF)
    child.close()
    assert "pushauth-ok-42" not in out.getvalue(), out.getvalue()
    assert child.exitstatus != 0


def test_issue12_sshd_login_with_a_backup_code_then_replay_and_wrong_code(
    syslog, sshd12, server, users, devices
):
    alice = users["alice"]
    codes = issue_codes(server, alice, 3)
    # 1. No device answers: the code typed at the prompt lets in, and its replacement is shown.
    mark = syslog.mark()
    started = time.time()
    child, out = login_with(sshd12, alice, codes[0].lower().replace("-", " "))
    child.expect(r"Your backup code was used\. Your new backup code: (" + CODE + r")\. Store it")
    replacement = child.match.group(1)
    took = time.time() - started
    child.sendline("")
    child.sendline("echo pushauth-ok-$((6*7))")
    child.expect("pushauth-ok-42")
    child.sendline("exit")
    child.expect(pexpect.EOF)
    print(f"issue12: sshd login with a backup code took {took:.2f} s to the replacement prompt")
    assert replacement not in codes
    _f, _s, line = syslog.wait_for(mark, r"pam_push: .*outcome=backup_code_used")
    assert f"user={alice}" in line and "service=sshd" in line, line
    assert _f == LOG_AUTHPRIV
    for c in codes + [replacement]:
        assert c not in line and c.replace("-", "") not in line, line
    # The push that was started is cancelled: nothing waits on the phone.
    assert devices["alice"].pending() == []

    # 2. The same code again: refused with a clear message.
    mark = syslog.mark()
    child, out = login_with(sshd12, alice, codes[0])
    child.expect("that backup code was not accepted")
    child.sendline("")
    assert_no_shell(child, out)
    _f, _s, line = syslog.wait_for(mark, r"pam_push: .*outcome=backup_code_refused")
    assert codes[0] not in line, line

    # 3. A wrong code: refused with the same message, audited by the server.
    mark = syslog.mark()
    child, out = login_with(sshd12, alice, "2222-3333-4444-5555")
    child.expect("that backup code was not accepted")
    child.sendline("")
    assert_no_shell(child, out)
    syslog.wait_for(mark, r"pam_push: .*outcome=backup_code_refused")
    audit = run(*server.admin, "audit", "--user", alice, "--limit", "20", *server.store_args).stdout
    assert "backup_code_refused" in audit and "backup_code_used" in audit, audit
    assert "service=sshd" in audit, audit

    # 4. The replacement works (and the count of wrong codes starts over).
    child, out = login_with(sshd12, alice, replacement)
    child.expect(r"Your new backup code: " + CODE)
    child.sendline("")
    child.sendline("echo pushauth-ok-$((6*7))")
    child.expect("pushauth-ok-42")
    child.sendline("exit")
    child.expect(pexpect.EOF)


def test_issue12_sshd_pinned_user_is_refused_a_backup_code(syslog, sshd12, server, users, devices):
    carol = users["carol"]
    codes = issue_codes(server, carol, 2)
    mark = syslog.mark()
    child, out = ssh(sshd12, carol)
    child.expect(r"type \d{3} \d{3} on your device, then press Enter \(c to cancel\)")
    assert "backup code" not in child.before + child.after
    child.sendline(codes[0])
    child.expect("backup codes are not accepted for this account on this host")
    child.sendline("")
    assert_no_shell(child, out)
    _f, _s, line = syslog.wait_for(mark, r"pam_push: .*outcome=backup_code_not_allowed")
    assert "pinned" in line and codes[0] not in line, line
    # The code was never sent to the server: it is still unused.
    audit = run(*server.admin, "audit", "--user", carol, "--limit", "20", *server.store_args).stdout
    assert "backup_code_used" not in audit and "backup_code_refused" not in audit, audit
