-- login.sql's work for :batch logins at once (each pgbench transaction is :batch logins of
-- :batch different users): every statement handles all of them, so the per-statement and
-- per-commit costs are shared. This is the floor of a pushauthd that would gather concurrent
-- logins into shared statements and commits; pg-floor divides by :batch.
\set lo :client_id * :batch
\set hi :lo + :batch - 1
\set now 1796091089814
BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT count(*) FROM (SELECT 1 FROM users WHERE name IN (SELECT 'u' || n FROM generate_series(:lo::int, :hi::int) n) ORDER BY name FOR UPDATE) l;
SELECT d.id, d.public_key,
       (SELECT count(*) FROM challenges c WHERE c.user_name = d.user_name AND c.state IN ('pending','acknowledged') AND c.expires_at > :now::bigint),
       (SELECT count(*) FROM challenges c WHERE c.user_name = d.user_name AND c.created_at > :now::bigint - 600000 AND c.state <> 'approved'),
       (SELECT count FROM code_failures f WHERE f.user_name = d.user_name)
  FROM devices d WHERE d.user_name IN (SELECT 'u' || n FROM generate_series(:lo::int, :hi::int) n) AND d.revoked_at IS NULL;
WITH ch AS (INSERT INTO challenges (id, user_name, rp_id, state, context, context_digest, rp_nonce, code, devices, created_at, expires_at, updated_at, source)
            SELECT md5(random()::text), 'u' || n, 'rp', 'pending', '{"host":"localhost","service":"bench"}', '\x1fba7f30356e3ea21ef66438762d2689ad88435306b3deeac9943698dd688e71', '\x9fa1924902d17a330ac46a79351b980c154235d0752bc2a31c52ba6b035e6811', '926195', '["d' || n || '"]', :now::bigint, :now::bigint + 60000, :now::bigint, ''
              FROM generate_series(:lo::int, :hi::int) n
            RETURNING id, user_name),
     idx AS (INSERT INTO open_challenge_devices (device_id, challenge_id) SELECT 'd' || substr(user_name, 2), id FROM ch),
     aud AS (INSERT INTO audit (at, kind, user_name, challenge_id, detail) SELECT :now::bigint, 'challenge_created', user_name, id, 'rp, 1 device(s), code on' FROM ch)
SELECT count(pg_notify('pushauth_device', 'd' || substr(user_name, 2))) FROM ch;
COMMIT;
INSERT INTO device_nonces (device_id, nonce, valid_until) SELECT 'd' || n, md5(random()::text), :now::bigint + 120000 FROM generate_series(:lo::int, :hi::int) n;
SELECT c.id, c.state, c.context, c.code FROM open_challenge_devices o
  CROSS JOIN LATERAL (SELECT * FROM challenges WHERE id = o.challenge_id LIMIT 1) c
 WHERE o.device_id IN (SELECT 'd' || n FROM generate_series(:lo::int, :hi::int) n) AND c.state IN ('pending','acknowledged');
BEGIN ISOLATION LEVEL READ COMMITTED;
INSERT INTO device_nonces (device_id, nonce, valid_until) SELECT 'd' || n, md5(random()::text), :now::bigint + 120000 FROM generate_series(:lo::int, :hi::int) n;
SELECT count(*) FROM (SELECT 1 FROM users WHERE name IN (SELECT 'u' || n FROM generate_series(:lo::int, :hi::int) n) ORDER BY name FOR UPDATE) l;
WITH up AS (UPDATE challenges SET state = 'approved', updated_at = :now::bigint, device_id = 'd' || substr(user_name, 2), decision = 'approve', typed_code = '926195', responded_at = 'now', signature = 'sig'
             WHERE user_name IN (SELECT 'u' || n FROM generate_series(:lo::int, :hi::int) n) AND state IN ('pending','acknowledged')
             RETURNING id, user_name),
     gone AS (DELETE FROM open_challenge_devices WHERE challenge_id IN (SELECT id FROM up)),
     aud AS (INSERT INTO audit (at, kind, user_name, device_id, challenge_id, detail) SELECT :now::bigint, 'challenge_answered', user_name, 'd' || substr(user_name, 2), id, 'approve' FROM up)
SELECT count(pg_notify('pushauth_challenge', id)) AS notified, array_agg(id)::text AS ids FROM up \gset
COMMIT;
SELECT id, state, decision, signature FROM challenges WHERE id = ANY(:ids::text[]);
