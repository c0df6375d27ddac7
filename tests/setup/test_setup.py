"""README's test command on a fresh machine (issue 9 item 20).

scripts/test runs scripts/setup first when it runs as root, so a newcomer needs nothing installed
by hand. This replays the newcomer: it runs scripts/setup (idempotent: on a machine that has
everything it installs nothing) and checks that every tool the suites use is then there, so a
package dropped from the list fails here with its name instead of deep inside a suite.
"""

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What each suite calls: the real-PAM suite (sshd, ssh, sudo, pamtester, libpam headers),
# the package suite (dpkg-buildpackage, lintian, systemd-analyze, libsqlite3), the Keycloak
# suite (mvn, a JDK, Debian's chromium, node with playwright-core), and the TLS tests (openssl).
COMMANDS = [
    "sshd", "ssh", "sudo", "pamtester", "pkg-config", "dpkg-buildpackage", "lintian",
    "systemd-analyze", "mvn", "javac", "chromium", "node", "npm", "openssl", "cargo",
]
FILES = [
    "/usr/include/security/pam_appl.h",
    "/usr/include/sqlite3.h",
]


def test_issue9_item20_setup_installs_what_the_suites_need():
    assert os.geteuid() == 0, "scripts/setup installs packages and needs root"
    done = subprocess.run(
        [str(ROOT / "scripts" / "setup")], cwd=ROOT, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=1800,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sbin = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [c for c in COMMANDS if shutil.which(c, path=sbin) is None]
    missing += [f for f in FILES if not Path(f).exists()]
    assert not missing, f"scripts/setup left these missing: {missing}"
    assert (ROOT / "tests" / "keycloak" / "node_modules" / "playwright-core").is_dir()
    assert (ROOT / "tests" / "web" / "node_modules" / "playwright-core").is_dir()
    import pexpect  # noqa: F401  (the real-PAM suite types into ssh, sudo and pamtester with it)
    import pytest  # noqa: F401
    # The Web Push suite checks pushes with its own JWT and RFC 8291 implementations.
    import cryptography  # noqa: F401
    import http_ece  # noqa: F401
    import jwt  # noqa: F401


def test_issue9_item20_ci_run_does_no_setup_of_its_own():
    # .ci/run must call README's test command and nothing that a newcomer would not run.
    text = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test" in text
    for word in ("apt-get", "pip install", "npm ci", "npm install"):
        assert word not in text, f".ci/run does set-up itself ({word}): README's command must"
