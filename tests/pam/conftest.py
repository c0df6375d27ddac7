"""Real-PAM suite for pam_push: a real pushauthd on loopback, real users, real PAM stacks
(pamtester, sshd, sudo), the device CLI as the phone, and syslog caught at /dev/log.

Runs as root and changes the system (users, /etc/pam.d, /etc/sudoers.d, /dev/log); everything it
changes is backed up and restored. Paths of the built binaries come from PUSHAUTH_TARGET_DIR
(default: <repo>/target/debug); tests/pam/run.sh builds them.

Installed packages instead of the build tree (tests/deb/run.sh sets these; each is optional):
- PUSHAUTH_PUSHAUTHD, PUSHAUTH_DEVICE: the binaries' paths;
- PUSHAUTH_MODULE: the module as the PAM line names it (a path, or a bare name such as
  "pam_push.so" that libpam finds in its security folder);
- PUSHAUTH_PAM_CONF: the module config the sshd test uses instead of writing its own (the
  installed /etc/pam_push.conf, already pointing at the server with a valid API key);
- PUSHAUTH_SERVER_URL: an already running pushauthd to use instead of starting one; then
  PUSHAUTH_SERVER_ADMIN (command prefix for admin subcommands, e.g.
  "runuser -u _pushauthd -- /usr/sbin/pushauthd") and PUSHAUTH_SERVER_CONFIG (its --config).
"""

import contextlib
import json
import os
import pathlib
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
TARGET = pathlib.Path(os.environ.get("PUSHAUTH_TARGET_DIR", REPO / "target" / "debug"))
PUSHAUTHD = pathlib.Path(os.environ.get("PUSHAUTH_PUSHAUTHD", TARGET / "pushauthd"))
DEVICE = pathlib.Path(os.environ.get("PUSHAUTH_DEVICE", TARGET / "pushauth-device"))
MODULE = os.environ.get("PUSHAUTH_MODULE", str(TARGET / "libpam_push.so"))
# The installed module config to use as is (None: tests write their own under /etc/pushauth-test).
PAM_CONF = os.environ.get("PUSHAUTH_PAM_CONF") or None
EXTERNAL_SERVER = os.environ.get("PUSHAUTH_SERVER_URL") or None

ETC = pathlib.Path("/etc/pushauth-test")
PAMD = pathlib.Path("/etc/pam.d")
USERS = {
    "alice": "pa_alice",  # enrolled, in group pa_push
    "rep": "pa_rep",  # enrolled; used for "report", which locks the user
    "bob": "pa_bob",  # local user, never enrolled
    "carol": "pa_carol",  # enrolled, outside group pa_push
}
GROUP = "pa_push"


def pytest_configure(config):
    if os.geteuid() != 0:
        pytest.exit("tests/pam must run as root", returncode=2)
    # A bare module name ("pam_push.so") is libpam's to find; only paths are checked here.
    module = [pathlib.Path(MODULE)] if "/" in MODULE else []
    for path in [PUSHAUTHD, DEVICE, *module]:
        if not path.exists():
            pytest.exit(f"{path} is missing: run tests/pam/run.sh (it builds them)", returncode=2)


def run(*args, check=True, env=None, **kw):
    full_env = dict(os.environ)
    full_env.update(env or {})
    res = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=full_env, timeout=60, **kw
    )
    if check and res.returncode != 0:
        raise AssertionError(f"{args} failed ({res.returncode}): {res.stdout}{res.stderr}")
    return res


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- syslog


class SyslogCatcher:
    """A datagram socket bound at /dev/log collecting every syslog line (the real /dev/log,
    if any, is moved aside and put back afterwards)."""

    PATH = "/dev/log"
    BACKUP = "/dev/log.pushauth-test-backup"

    def __init__(self):
        self.lines = []
        self.lock = threading.Lock()
        self.moved = False
        if os.path.lexists(self.PATH):
            os.rename(self.PATH, self.BACKUP)
            self.moved = True
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.PATH)
        os.chmod(self.PATH, 0o666)
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        self.sock.settimeout(0.2)
        while not self.stopping:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.lines.append(data.decode("utf-8", "replace"))

    def mark(self):
        with self.lock:
            return len(self.lines)

    def since(self, mark):
        with self.lock:
            return list(self.lines[mark:])

    def wait_for(self, mark, pattern, timeout=10):
        """The first line after `mark` matching `pattern`, as (facility, severity, text)."""
        regex = re.compile(pattern)
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in self.since(mark):
                if regex.search(line):
                    m = re.match(r"<(\d+)>", line)
                    pri = int(m.group(1)) if m else -1
                    return pri >> 3, pri & 7, line
            time.sleep(0.05)
        raise AssertionError(f"no syslog line matching {pattern!r}; got {self.since(mark)}")

    def close(self):
        self.stopping = True
        self.thread.join(2)
        self.sock.close()
        os.unlink(self.PATH)
        if self.moved:
            os.rename(self.BACKUP, self.PATH)


LOG_AUTHPRIV = 10


@pytest.fixture(scope="session")
def syslog():
    catcher = SyslogCatcher()
    yield catcher
    catcher.close()


# ---------------------------------------------------------------- server, users, devices


class Server:
    def __init__(self, tmp):
        self.tmp = pathlib.Path(tmp)
        self.data = self.tmp / "data"
        self.data.mkdir()
        self.proc = None
        if EXTERNAL_SERVER:
            # Already running (the installed package's server): only admin commands here.
            self.url = EXTERNAL_SERVER.rstrip("/")
            self.admin = shlex.split(os.environ.get("PUSHAUTH_SERVER_ADMIN", str(PUSHAUTHD)))
            self.store_args = ["--config", os.environ.get("PUSHAUTH_SERVER_CONFIG", "")]
            return
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin = [str(PUSHAUTHD)]
        self.store_args = ["--data-dir", str(self.data)]
        self.start()

    def start(self):
        log = open(self.tmp / "pushauthd.log", "a")
        # The suite makes dozens of logins per user within minutes: raise the push-fatigue
        # window limit (the report lockout stays as shipped).
        config = self.tmp / "pushauthd.toml"
        config.write_text(
            "sweep_interval_secs = 1\n[limits]\nmax_open_per_user = 10\nmax_open_per_source = 10\n"
            "max_new_per_window = 1000\nmax_new_per_user_window = 1000\n"
            "window_secs = 600\nreport_lockout_secs = 900\n"
        )
        self.proc = subprocess.Popen(
            [
                str(PUSHAUTHD),
                "serve",
                "--config",
                str(config),
                "--listen",
                f"127.0.0.1:{self.port}",
                "--data-dir",
                str(self.data),
                "--admin-token-file",
                str(self.tmp / "admin-token"),
            ],
            stdout=log,
            stderr=log,
        )
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("pushauthd did not come up")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def rp_key(self):
        out = run(*self.admin, "rp", "add", "pam-test", *self.store_args).stdout
        return out.strip().splitlines()[-1].strip()

    def enroll(self, user, name):
        out = run(
            *self.admin, "enroll", user, *self.store_args, "--public-url", self.url
        ).stdout
        link = out.splitlines()[1].strip()
        return Device(self.tmp / f"device-{user}", link, name)


class Device:
    """The device CLI with its own profile directory."""

    def __init__(self, home, link, name):
        self.env = {"PUSHAUTH_DEVICE_DIR": str(home)}
        run(DEVICE, "enroll", link, "--name", name, env=self.env)

    def cli(self, *args, check=True):
        return run(DEVICE, *args, env=self.env, check=check)

    # Challenge ids are base64url and may start with '-': the id goes after "--".
    def approve(self, challenge_id, code, check=True):
        return self.cli("approve", "--code", code, "--", challenge_id, check=check)

    def deny(self, challenge_id):
        return self.cli("deny", "--", challenge_id)

    def report(self, challenge_id):
        return self.cli("report", "--", challenge_id)

    def pending(self):
        return json.loads(self.cli("pending", "--json").stdout)["challenges"]

    def wait_pending(self, timeout=15, service=None):
        """The first open challenge (for `service`, when given)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = [
                c
                for c in self.pending()
                if service is None or c["context"].get("service") == service
            ]
            if found:
                return found[0]
            time.sleep(0.1)
        raise AssertionError("no challenge reached the device")


@pytest.fixture(scope="session")
def server():
    tmp = tempfile.mkdtemp(prefix="pushauth-pam-")
    srv = Server(tmp)
    yield srv
    srv.stop()
    shutil.rmtree(tmp, ignore_errors=True)


def _ensure_user(name, groups=()):
    run("userdel", "-r", name, check=False)
    args = ["useradd", "-m", "-s", "/bin/bash"]
    if groups:
        args += ["-G", ",".join(groups)]
    run(*args, name)
    # Not locked ("!"), but no password can match: keys and pushes only.
    run("usermod", "-p", "*", name)


@pytest.fixture(scope="session")
def users():
    run("groupdel", GROUP, check=False)
    run("groupadd", GROUP)
    for key, name in USERS.items():
        _ensure_user(name, groups=() if key == "carol" else (GROUP,))
    yield USERS
    for name in USERS.values():
        run("userdel", "-r", name, check=False)
    run("groupdel", GROUP, check=False)


@pytest.fixture(scope="session")
def devices(server, users):
    return {
        "alice": server.enroll(users["alice"], "Pixel 7"),
        "rep": server.enroll(users["rep"], "Rep phone"),
        "carol": server.enroll(users["carol"], "Carol phone"),
    }


# ---------------------------------------------------------------- configs and PAM services


class Etc:
    """Config variants under /etc/pushauth-test and PAM services /etc/pam.d/pushauth-test-*."""

    def __init__(self, server):
        if ETC.exists():
            shutil.rmtree(ETC)
        ETC.mkdir(mode=0o755)
        self.api_key = ETC / "api-key"
        self.api_key.write_text(server.rp_key() + "\n")
        os.chmod(self.api_key, 0o600)
        self.server = server
        self.services = []

    def conf(self, name, extra="", server_url=None, mode=0o600, api_key_line=None):
        path = ETC / f"{name}.conf"
        url = server_url or self.server.url
        key = api_key_line or f'api_key_file = "{self.api_key}"'
        path.write_text(f'server = "{url}"\n{key}\n{extra}')
        os.chmod(path, mode)
        return path

    def service(self, name, conf_path, rest_of_stack="auth required pam_permit.so\n"):
        """A PAM service: pam_push, then pam_permit standing in for the rest of the stack."""
        svc = f"pushauth-test-{name}"
        (PAMD / svc).write_text(
            f"auth required {MODULE} conf={conf_path}\n"
            + rest_of_stack
            + "account required pam_permit.so\n"
        )
        self.services.append(svc)
        return svc

    def cleanup(self):
        for svc in self.services:
            (PAMD / svc).unlink(missing_ok=True)
        shutil.rmtree(ETC, ignore_errors=True)


@pytest.fixture(scope="session")
def etc(server):
    e = Etc(server)
    yield e
    e.cleanup()


@pytest.fixture(scope="session")
def backup():
    """Backs up system files the suite replaces; restores them at the end."""
    saved = {}

    def save(path):
        path = pathlib.Path(path)
        if str(path) in saved:
            return
        if path.exists():
            copy = path.with_name(path.name + ".pushauth-test-backup")
            shutil.copy2(path, copy)
            saved[str(path)] = copy
        else:
            saved[str(path)] = None

    yield save
    for original, copy in saved.items():
        if copy is None:
            pathlib.Path(original).unlink(missing_ok=True)
        else:
            shutil.move(str(copy), original)


def write_sshd_stack(conf_arg):
    """/etc/pam.d/sshd as the suites use it: pam_push alone in auth (`conf_arg` is the module's
    arguments, e.g. " conf=/etc/pushauth-test/x.conf"). Back the file up first (`backup`)."""
    (PAMD / "sshd").write_text(
        "# pushauth test stack (the system file is restored after the suite)\n"
        f"auth required {MODULE}{conf_arg}\n"
        "account required pam_permit.so\n"
        "session required pam_permit.so\n"
    )


@contextlib.contextmanager
def sshd_running(prefix, authorized, keys=("client_ed25519",),
                 methods="publickey,keyboard-interactive:pam", extra=""):
    """A real sshd on 127.0.0.1 on a free port, in a temporary directory made with `prefix`:
    a fresh host key, client key pairs named `keys` (ed25519, no passphrase), each user of
    `authorized` allowed every one of them, `AuthenticationMethods methods`, `ExposeAuthInfo
    yes`, and `extra` lines. Yields {"port", "tmp", "key" (the first key's path), "keys"}; stops
    sshd and deletes the directory afterwards."""
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(tmp, 0o755)
    proc = None
    try:
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", tmp / "host_ed25519")
        for name in keys:
            run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", tmp / name)
        allowed = tmp / "authorized_keys"
        allowed.mkdir()
        pubs = "".join((tmp / f"{name}.pub").read_text() for name in keys)
        for user in authorized:
            (allowed / user).write_text(pubs)
            os.chmod(allowed / user, 0o644)
        os.chmod(allowed, 0o755)
        port = free_port()
        (tmp / "sshd_config").write_text(
            f"""Port {port}
ListenAddress 127.0.0.1
HostKey {tmp}/host_ed25519
PidFile {tmp}/sshd.pid
UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication no
PubkeyAuthentication yes
AuthenticationMethods {methods}
ExposeAuthInfo yes
AuthorizedKeysFile {allowed}/%u
StrictModes no
LogLevel VERBOSE
LoginGraceTime 90
{extra}"""
        )
        os.makedirs("/run/sshd", exist_ok=True)
        with open(tmp / "sshd.log", "w") as log:
            proc = subprocess.Popen(
                ["/usr/sbin/sshd", "-D", "-e", "-f", str(tmp / "sshd_config")],
                stdout=log,
                stderr=log,
            )
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("sshd did not start: " + (tmp / "sshd.log").read_text())
        yield {
            "port": port,
            "tmp": tmp,
            "key": tmp / keys[0],
            "keys": {name: tmp / name for name in keys},
        }
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
