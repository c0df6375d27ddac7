-- Users and devices for login.sql (run after `pushauthd migrate`); :users is set by pg-floor.
INSERT INTO users (name, created_at) SELECT 'u' || n, 0 FROM generate_series(0, :users - 1) AS n;
INSERT INTO devices (id, user_name, name, alg, public_key, created_at)
  SELECT 'd' || n, 'u' || n, 'bench', 'ed25519', 'key', 0 FROM generate_series(0, :users - 1) AS n;
