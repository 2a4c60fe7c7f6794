-- The ledger hands recipients out (issue 11): the alerts function gives the sms function only
-- recipients still pending whose time has come, and learns from its reports what became of
-- each. Per recipient: the attempts handed out so far; whether it is out now (0: no; 1: handed
-- out, the bus not having acknowledged it; 2: on the bus, waiting for the report); and due_at,
-- when it is due (not out) or when the wait for its report ends (out). Per alert: deliver_until,
-- its flight's departure (at least an hour after the alert), after which nobody is tried again.
ALTER TABLE alert_recipients
    ADD COLUMN attempts   INT UNSIGNED     NOT NULL DEFAULT 0,
    ADD COLUMN handed_out TINYINT UNSIGNED NOT NULL DEFAULT 0,
    ADD COLUMN due_at     DATETIME(6)      NULL,
    ADD KEY recipients_due (state, handed_out, due_at),
    ADD KEY recipients_by_message (message_id);

ALTER TABLE alerts ADD COLUMN deliver_until DATETIME(6) NULL;

UPDATE alerts
SET deliver_until = GREATEST(
    COALESCE(estimated_departure_utc, scheduled_departure_utc, created_at),
    created_at + INTERVAL 1 HOUR);

-- Recipients of alerts already on the bus may have been texted: they wait for a report like any
-- hand-out the bus took, then fail as OUTCOME_UNKNOWN. The others are due at once.
UPDATE alert_recipients r
JOIN alert_outbox o ON o.alert_seq = r.alert_seq
SET r.attempts = 1, r.handed_out = 2, r.due_at = UTC_TIMESTAMP(6) + INTERVAL 30 MINUTE
WHERE r.state = 'PENDING' AND (o.published_at IS NOT NULL OR o.parts_published > 0);

UPDATE alert_recipients SET due_at = UTC_TIMESTAMP(6) WHERE due_at IS NULL;
