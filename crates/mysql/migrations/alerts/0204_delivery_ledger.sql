-- The delivery ledger: what became of each recipient's SMS, from the sms function's reports
-- (state PENDING, SENT or FAILED; the provider's message id; the failure's class, never the
-- provider's text). Recipients of alerts recorded before have no report: they stay PENDING.
ALTER TABLE alert_recipients
    ADD COLUMN state      VARCHAR(16)  NOT NULL DEFAULT 'PENDING',
    ADD COLUMN message_id VARCHAR(100) NULL,
    ADD COLUMN failure    VARCHAR(32)  NULL,
    ADD COLUMN updated_at DATETIME(6)  NULL;
