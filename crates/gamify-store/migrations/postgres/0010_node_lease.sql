-- Migration 0010: the exclusive node's lease. Forward-only.
--
-- A node started with GAMIFY_PG_EXCLUSIVE=true declares itself the only
-- writer of this schema for a while (a lease it renews) and may then keep
-- users' state in memory. Every write transaction of every node calls
-- gamify_fence first: it holds the lease lock in shared mode until the
-- transaction ends, and refuses to write while another node's lease is
-- valid. A node taking or renewing the lease holds the same lock in
-- exclusive mode, so it waits for every write that passed the fence before.
-- Taking and renewing are functions too, so that each is one statement: the
-- lock is held for no longer than the statement, never across a round trip.
-- See crates/gamify-store/src/postgres/lease.rs.
CREATE TABLE node_lease (
    id          SMALLINT PRIMARY KEY CHECK (id = 1),
    holder      TEXT NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);

-- 27749 is 0x6c65 ("le"), the lease lock's class; the object is the schema.
CREATE FUNCTION gamify_fence(me TEXT) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    other TEXT;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(27749, hashtext(current_schema()));
    SELECT holder INTO other FROM node_lease
     WHERE holder IS DISTINCT FROM me AND expires_at > clock_timestamp();
    IF FOUND THEN
        RAISE EXCEPTION 'gamify node % holds this database exclusively', other
            USING ERRCODE = 'GM001';
    END IF;
END
$$;

-- Takes the lease for `me` if it is free, expired or already `me`'s, for
-- `ttl_secs`; returns the holder afterwards (`me` if taken).
CREATE FUNCTION gamify_take_lease(me TEXT, ttl_secs DOUBLE PRECISION) RETURNS TEXT
LANGUAGE plpgsql AS $$
DECLARE
    now_holder TEXT;
BEGIN
    PERFORM pg_advisory_xact_lock(27749, hashtext(current_schema()));
    INSERT INTO node_lease (id, holder, expires_at)
    VALUES (1, me, clock_timestamp() + make_interval(secs => ttl_secs))
    ON CONFLICT (id) DO UPDATE
       SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
     WHERE node_lease.holder = EXCLUDED.holder
        OR node_lease.expires_at <= clock_timestamp();
    SELECT holder INTO now_holder FROM node_lease;
    RETURN now_holder;
END
$$;

-- Extends `me`'s lease by `ttl_secs` from now if it is still `me`'s and
-- unexpired; returns whether it did.
CREATE FUNCTION gamify_renew_lease(me TEXT, ttl_secs DOUBLE PRECISION) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(27749, hashtext(current_schema()));
    UPDATE node_lease SET expires_at = clock_timestamp() + make_interval(secs => ttl_secs)
     WHERE id = 1 AND holder = me AND expires_at > clock_timestamp();
    RETURN FOUND;
END
$$;
