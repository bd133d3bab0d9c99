-- The log, migration 0010: the webhook delivery log is pruned. Forward-only.
--
-- A sweep deletes finished deliveries (delivered, failed, cancelled) older
-- than `[webhooks] keep_days`. It looks for them by `created_at`, which is
-- written once and never updated, so the index costs one entry per
-- delivery and nothing when a delivery's status changes.
CREATE INDEX webhook_deliveries_by_age ON webhook_deliveries (created_at);
