-- pgbench's side of bench/spend.sh: the single conditional UPDATE a service
-- would run to spend from a balance without Gamify, on 10 hot rows, one per
-- transaction. No ledger, no idempotency, no HTTP: the floor of the work.
\set u random(1, 10)
UPDATE pgbench_wallets SET points = points - 1000 WHERE user_id = 'hot_' || :u AND points >= 1000;
