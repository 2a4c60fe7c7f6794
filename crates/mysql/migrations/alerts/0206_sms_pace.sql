-- The SMS budget's schedule, one row: when the next send slot is free. Each hand-out reserves
-- the slots its recipients will be sent in, in the same transaction, and its messages carry the
-- time of their first slot; so sms invocations running at once (a request's hand-out and the
-- relay's, several alerts) take turns instead of each sending at the full rate.
CREATE TABLE sms_pace (
    id           TINYINT UNSIGNED NOT NULL PRIMARY KEY,
    next_slot_at DATETIME(6)      NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

INSERT INTO sms_pace (id, next_slot_at) VALUES (1, '1970-01-01 00:00:00');
