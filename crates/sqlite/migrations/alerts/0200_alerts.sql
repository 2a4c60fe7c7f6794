-- The alerts function's tables (SQLite flavour of the MySQL schema; same meaning).
CREATE TABLE alerts (
    seq                     INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id                TEXT    NOT NULL UNIQUE,
    flight_number           TEXT    NOT NULL,
    departure_date          TEXT    NOT NULL,
    event                   TEXT    NOT NULL,
    -- The event and its new time as one value: an identical event is issued once per flight.
    event_key               TEXT    NOT NULL,
    reason                  TEXT,
    estimated_departure_utc INTEGER,
    estimated_offset_min    INTEGER,
    recipients              INTEGER NOT NULL,
    created_at              INTEGER NOT NULL,
    UNIQUE (flight_number, departure_date, event_key)
);
CREATE INDEX alerts_by_flight ON alerts (flight_number, departure_date, seq);
CREATE INDEX alerts_by_event ON alerts (event, seq);
CREATE INDEX alerts_by_time ON alerts (created_at);

CREATE TABLE alert_recipients (
    alert_seq INTEGER NOT NULL REFERENCES alerts (seq),
    phone     TEXT    NOT NULL,
    PRIMARY KEY (alert_seq, phone)
) WITHOUT ROWID;

CREATE TABLE alert_outbox (
    alert_seq       INTEGER PRIMARY KEY REFERENCES alerts (seq),
    attempts        INTEGER NOT NULL DEFAULT 0,
    parts_published INTEGER NOT NULL DEFAULT 0,
    lease_until     INTEGER,
    last_error      TEXT,
    published_at    INTEGER
);
CREATE INDEX outbox_due ON alert_outbox (published_at, lease_until);

-- Keys compare exactly (SQLite's default BINARY collation), case included.
CREATE TABLE idempotency_keys (
    idem_key    TEXT    NOT NULL PRIMARY KEY,
    fingerprint TEXT    NOT NULL,
    alert_seq   INTEGER REFERENCES alerts (seq),
    created     INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
