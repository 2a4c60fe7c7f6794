-- The delivery ledger (see the MySQL migration of that name).
ALTER TABLE alert_recipients ADD COLUMN state TEXT NOT NULL DEFAULT 'PENDING';
ALTER TABLE alert_recipients ADD COLUMN message_id TEXT;
ALTER TABLE alert_recipients ADD COLUMN failure TEXT;
ALTER TABLE alert_recipients ADD COLUMN updated_at INTEGER;
