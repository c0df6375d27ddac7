-- One push login's database work in the cheapest shape the issue's rules allow (pgbench custom
-- script, run by scripts/pg-floor). It assumes every key lookup is cached in pushauthd and keeps
-- only what must reach the database: the creation (user lock, limits, challenge, index, audit,
-- NOTIFY) in one transaction; the device's poll (its request nonce, then its open challenges);
-- the answer (nonce, locked compare-and-set, index delete, audit, NOTIFY) in one transaction; and
-- the relying party's read of the outcome. No push-subscription read, no advisory lock, no
-- last-seen update, no wrong-code bookkeeping: pushauthd does more than this on every login.
\set u :client_id
\set now 1796091089814
BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT 1 FROM users WHERE name = 'u' || :u::int FOR UPDATE;
SELECT (SELECT count(*) FROM challenges WHERE user_name = 'u' || :u::int AND state IN ('pending','acknowledged') AND expires_at > :now::bigint),
       (SELECT count(*) FROM challenges WHERE user_name = 'u' || :u::int AND created_at > :now::bigint - 600000 AND state <> 'approved'),
       (SELECT count FROM code_failures WHERE user_name = 'u' || :u::int),
       d.id, d.public_key
  FROM devices d WHERE d.user_name = 'u' || :u::int AND d.revoked_at IS NULL;
WITH ch AS (INSERT INTO challenges (id, user_name, rp_id, state, context, context_digest, rp_nonce, code, devices, created_at, expires_at, updated_at, source)
            VALUES (md5(random()::text), 'u' || :u::int, 'rp', 'pending', '{"host":"localhost","service":"bench"}', '\x1fba7f30356e3ea21ef66438762d2689ad88435306b3deeac9943698dd688e71', '\x9fa1924902d17a330ac46a79351b980c154235d0752bc2a31c52ba6b035e6811', '926195', '["d' || :u::int || '"]', :now::bigint, :now::bigint + 60000, :now::bigint, '')
            RETURNING id),
     idx AS (INSERT INTO open_challenge_devices (device_id, challenge_id) SELECT 'd' || :u::int, id FROM ch),
     aud AS (INSERT INTO audit (at, kind, user_name, challenge_id, detail) SELECT :now::bigint, 'challenge_created', 'u' || :u::int, id, 'rp, 1 device(s), code on' FROM ch)
SELECT id AS challenge, pg_notify('pushauth_device', 'd' || :u::int) FROM ch \gset
COMMIT;
INSERT INTO device_nonces (device_id, nonce, valid_until) VALUES ('d' || :u::int, md5(random()::text), :now::bigint + 120000);
SELECT c.id, c.state, c.context, c.code FROM open_challenge_devices o
  CROSS JOIN LATERAL (SELECT * FROM challenges WHERE id = o.challenge_id LIMIT 1) c
 WHERE o.device_id = 'd' || :u::int AND c.state IN ('pending','acknowledged');
BEGIN ISOLATION LEVEL READ COMMITTED;
INSERT INTO device_nonces (device_id, nonce, valid_until) VALUES ('d' || :u::int, md5(random()::text), :now::bigint + 120000);
WITH up AS (UPDATE challenges SET state = 'approved', updated_at = :now::bigint, device_id = 'd' || :u::int, decision = 'approve', typed_code = '926195', responded_at = 'now', signature = 'sig'
             WHERE id = :challenge AND state IN ('pending','acknowledged')
               AND user_name = (SELECT name FROM users WHERE name = 'u' || :u::int FOR UPDATE)
             RETURNING id),
     gone AS (DELETE FROM open_challenge_devices WHERE challenge_id = :challenge),
     aud AS (INSERT INTO audit (at, kind, user_name, device_id, challenge_id, detail) SELECT :now::bigint, 'challenge_answered', 'u' || :u::int, 'd' || :u::int, id, 'approve' FROM up)
SELECT pg_notify('pushauth_challenge', id) FROM up;
COMMIT;
SELECT id, state, decision, signature FROM challenges WHERE id = :challenge;
