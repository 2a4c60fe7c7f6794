-- The ledger hands recipients out (see the MySQL migration of that name). Times as unix
-- microseconds, schedules as unix seconds.
ALTER TABLE alert_recipients ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alert_recipients ADD COLUMN handed_out INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alert_recipients ADD COLUMN due_at INTEGER;
CREATE INDEX recipients_due ON alert_recipients (state, handed_out, due_at);
CREATE INDEX recipients_by_message ON alert_recipients (message_id);

ALTER TABLE alerts ADD COLUMN deliver_until INTEGER;

UPDATE alerts
SET deliver_until = MAX(
    COALESCE(estimated_departure_utc, scheduled_departure_utc, created_at / 1000000) * 1000000,
    created_at + 3600000000);

UPDATE alert_recipients
SET attempts = 1, handed_out = 2,
    due_at = CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER) + 1800000000
WHERE state = 'PENDING' AND alert_seq IN (
    SELECT alert_seq FROM alert_outbox WHERE published_at IS NOT NULL OR parts_published > 0);

UPDATE alert_recipients
SET due_at = CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)
WHERE due_at IS NULL;
