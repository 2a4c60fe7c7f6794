-- The alerts function's tables: issued alerts, who each was sent to, the outbox that gets them
-- onto the bus, and the idempotency keys of the requests that created them.
CREATE TABLE alerts (
    seq                     BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    alert_id                CHAR(36)        NOT NULL,
    flight_number           VARCHAR(7)      NOT NULL,
    departure_date          DATE            NOT NULL,
    event                   VARCHAR(16)     NOT NULL,
    -- The event and its new time as one value: an identical event is issued once per flight.
    event_key               VARCHAR(40)     NOT NULL,
    reason                  VARCHAR(500)    NULL,
    estimated_departure_utc DATETIME        NULL,
    estimated_offset_min    SMALLINT        NULL,
    recipients              INT UNSIGNED    NOT NULL,
    created_at              DATETIME(6)     NOT NULL,
    UNIQUE KEY alerts_public_id (alert_id),
    UNIQUE KEY alerts_event_once (flight_number, departure_date, event_key),
    KEY alerts_by_flight (flight_number, departure_date, seq),
    KEY alerts_by_event (event, seq),
    KEY alerts_by_time (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE alert_recipients (
    alert_seq BIGINT UNSIGNED NOT NULL,
    phone     VARCHAR(16)     NOT NULL,
    PRIMARY KEY (alert_seq, phone),
    CONSTRAINT alert_recipients_alert FOREIGN KEY (alert_seq) REFERENCES alerts (seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE alert_outbox (
    alert_seq       BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    attempts        INT UNSIGNED    NOT NULL DEFAULT 0,
    parts_published INT UNSIGNED    NOT NULL DEFAULT 0,
    lease_until     DATETIME(6)     NULL,
    last_error      VARCHAR(500)    NULL,
    published_at    DATETIME(6)     NULL,
    KEY outbox_due (published_at, lease_until),
    CONSTRAINT alert_outbox_alert FOREIGN KEY (alert_seq) REFERENCES alerts (seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE idempotency_keys (
    -- Binary: keys are compared exactly, case included.
    idem_key    VARBINARY(255)  NOT NULL PRIMARY KEY,
    fingerprint CHAR(64)        NOT NULL,
    alert_seq   BIGINT UNSIGNED NULL,
    created     BOOLEAN         NOT NULL DEFAULT FALSE,
    created_at  DATETIME(6)     NOT NULL,
    KEY idempotency_keys_age (created_at),
    CONSTRAINT idempotency_keys_alert FOREIGN KEY (alert_seq) REFERENCES alerts (seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
