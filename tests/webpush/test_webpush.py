"""Web Push from the built pushauthd to a push service on loopback (issue 11): the VAPID JWT
checked with the served key (PyJWT over `cryptography`), the RFC 8030 headers, the payload
decrypted with the subscription's private key by two implementations that share nothing with
pushauthd (`http_ece`, and RFC 8291 written out here over `cryptography`'s primitives); a 410
drops the subscription; a push service that never answers delays no challenge."""

import base64
import json
import os
import pathlib
import time

import http_ece
import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from conftest import Device, http


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Subscription:
    """What a browser keeps for a push subscription: an ECDH key pair and the auth secret."""

    def __init__(self):
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.public = self.private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.auth = os.urandom(16)

    def register(self, device, endpoint):
        res = device.run("push-subscribe", endpoint, "--p256dh", b64u(self.public), "--auth", b64u(self.auth))
        return json.loads(res.stdout)

    def decrypt_rfc8291(self, body):
        """RFC 8291 §3.4 and RFC 8188 §2, one record, written out over `cryptography`."""
        salt, rs, idlen = body[:16], int.from_bytes(body[16:20], "big"), body[20]
        keyid, ciphertext = body[21 : 21 + idlen], body[21 + idlen :]
        assert idlen == 65 and len(ciphertext) <= rs
        sender = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), keyid)
        shared = self.private.exchange(ec.ECDH(), sender)
        ikm = HKDF(hashes.SHA256(), 32, self.auth, b"WebPush: info\x00" + self.public + keyid).derive(shared)
        cek = HKDF(hashes.SHA256(), 16, salt, b"Content-Encoding: aes128gcm\x00").derive(ikm)
        nonce = HKDF(hashes.SHA256(), 12, salt, b"Content-Encoding: nonce\x00").derive(ikm)
        padded = AESGCM(cek).decrypt(nonce, ciphertext, None).rstrip(b"\x00")
        assert padded.endswith(b"\x02"), "the last record's delimiter"
        return padded[:-1]

    def decrypt_http_ece(self, body):
        return http_ece.decrypt(body, private_key=self.private, auth_secret=self.auth, version="aes128gcm")


def new_challenge(server, key, user="alice", ttl=60):
    started = time.monotonic()
    status, body = http(
        "POST",
        f"{server.url}/v1/challenges",
        key,
        {"user": user, "ttl_secs": ttl, "rp_nonce": b64u(os.urandom(32)), "context": {"service": "sshd"}},
    )
    assert status == 201, body
    return body["id"], time.monotonic() - started


def test_issue11_a_push_is_vapid_signed_and_holds_only_the_challenge_id(server, push_service, rp_key):
    device = Device(server.tmp, server, "alice", "phone")
    sub = Subscription()
    endpoint = f"{push_service.origin}/push/alice-phone"
    assert sub.register(device, endpoint) == {"origin": push_service.origin, "replaced": False}
    status, vapid = http("GET", f"{server.url}/v1/push/vapid")
    assert status == 200
    served = unb64u(vapid["public_key"])
    assert len(served) == 65 and served[0] == 4
    # The CLI reads the same key.
    assert device.run("push-subscribe", "--vapid-key").stdout.strip() == vapid["public_key"]

    challenge_id, _ = new_challenge(server, rp_key)
    [push] = push_service.wait(1)
    assert push["path"] == "/push/alice-phone"
    headers = {k.lower(): v for k, v in push["headers"].items()}
    assert headers["content-encoding"] == "aes128gcm"
    assert headers["urgency"] == "high"
    assert 55 <= int(headers["ttl"]) <= 61
    topic = headers["topic"]
    assert 1 <= len(topic) <= 32 and "alice" not in topic
    assert all(c.isalnum() or c in "-_" for c in topic)

    scheme, _, params = headers["authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(p.strip().split("=", 1) for p in params.split(","))
    assert fields["k"] == vapid["public_key"]
    public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), served)
    assert jwt.get_unverified_header(fields["t"])["alg"] == "ES256"
    claims = jwt.decode(fields["t"], public_key, algorithms=["ES256"], audience=push_service.origin)
    now = time.time()
    assert now < claims["exp"] <= now + 24 * 3600
    assert claims["sub"] == "mailto:ops@example.org"

    for plain in (sub.decrypt_rfc8291(push["body"]), sub.decrypt_http_ece(push["body"])):
        assert json.loads(plain) == {"challenge_id": challenge_id}
    # Nothing of the login context travels: not the service, not the user.
    assert b"sshd" not in push["body"] and b"alice" not in push["body"]

    # A second login for the same user: same topic, so the newer push replaces the older.
    new_challenge(server, rp_key)
    second = push_service.wait(2)[1]
    assert {k.lower(): v for k, v in second["headers"].items()}["topic"] == topic
    # The log names the push service's origin at most, never the endpoint's path.
    assert "alice-phone" not in server.log_text()


def test_issue11_a_410_drops_the_subscription(server, push_service, rp_key):
    push_service.status = 410
    device = Device(server.tmp, server, "alice", "phone")
    sub = Subscription()
    sub.register(device, f"{push_service.origin}/push/expired")
    new_challenge(server, rp_key)
    push_service.wait(1)
    deadline = time.monotonic() + 10
    while server.metric("gone") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.metric("gone") == 1
    status, audit = server.admin("GET", "/v1/admin/audit?user=alice")
    assert status == 200
    kinds = [e["kind"] for e in audit["events"]] if isinstance(audit, dict) else []
    assert "push_subscription_removed" in kinds, audit
    # Gone: no push for the next login, and removing it again finds nothing.
    new_challenge(server, rp_key)
    time.sleep(0.5)
    assert len(push_service.received) == 1
    assert json.loads(device.run("push-subscribe", "--remove").stdout) == {"removed": False}


def test_issue11_an_endpoint_outside_the_allow_list_is_refused(server, push_service):
    device = Device(server.tmp, server, "alice", "phone")
    sub = Subscription()
    for endpoint in [
        f"http://127.0.0.1:{push_service.port + 1}/internal",
        "http://169.254.169.254/latest/meta-data",
        "https://fcm.googleapis.com.attacker.example/x",
    ]:
        res = device.run(
            "push-subscribe", endpoint, "--p256dh", b64u(sub.public), "--auth", b64u(sub.auth), check=False
        )
        assert res.returncode != 0
        assert "push_origin_not_allowed" in res.stderr, res.stderr


def test_issue11_a_push_service_that_never_answers_delays_no_challenge(server, push_service, rp_key):
    push_service.hang.set()
    device = Device(server.tmp, server, "alice", "phone")
    Subscription().register(device, f"{push_service.origin}/push/hung")
    slowest = 0.0
    # Four times the default pool of two senders, all of them stuck.
    for _ in range(8):
        challenge_id, took = new_challenge(server, rp_key, ttl=120)
        slowest = max(slowest, took)
        # The device still finds it over its signed API.
        listed = json.loads(device.run("pending", "--json").stdout)
        assert challenge_id in json.dumps(listed)
        # Cancelled, so the per-source bound on open challenges (3) does not refuse the next.
        assert http("DELETE", f"{server.url}/v1/challenges/{challenge_id}", rp_key)[0] == 200
    assert slowest < 2.0, f"a challenge took {slowest:.2f} s"
    assert len(push_service.wait(2)) >= 2
    assert server.metric("sent") == 0
    # The sender pool stayed at its two threads (read from pushauthd's own /proc entry).
    tasks = pathlib.Path(f"/proc/{server.proc.pid}/task")
    names = [(t / "comm").read_text().strip() for t in tasks.iterdir()]
    assert sum(n.startswith("pushauthd-push") for n in names) == 2, names
