-- pgbench's side of bench/pg.sh: one event row per transaction, as a
-- service writing straight to PostgreSQL without Gamify would, into
-- pgbench_events, a copy of gamify's events table (columns, identity,
-- constraints and indexes: CREATE TABLE … (LIKE events INCLUDING ALL)).
-- The values are what Gamify would store for the benchmark's requests.
\set u random(1, 100000)
\set v random(1, 9)
INSERT INTO pgbench_events (id, user_id, category, action, value_milli, points_milli, weight_milli,
                            streak_day, bonus_percent, unlocked, total_after, lifetime_after, metadata,
                            occurred_at, created_at, idempotency_key, request_hash)
VALUES ('evt_' || md5(random()::text), 'user_' || :u, 'finance', 'bench', :v * 1000 + 500,
        (:v * 1000 + 500) * 2, 2000, 1, 0, '', (:v * 1000 + 500) * 2, (:v * 1000 + 500) * 2,
        '{"source":"wrk"}', (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
        (extract(epoch FROM clock_timestamp()) * 1000)::bigint, NULL, NULL);
