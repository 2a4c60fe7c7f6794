-- The flights function's tables (SQLite flavour of the MySQL schema; same meaning).
-- Schedule instants are UTC unix seconds plus the offset they were given in; bookkeeping times
-- are UTC unix microseconds.
CREATE TABLE flights (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    flight_number        TEXT    NOT NULL,
    departure_date       TEXT    NOT NULL,
    origin               TEXT    NOT NULL,
    destination          TEXT    NOT NULL,
    departure_utc        INTEGER NOT NULL,
    departure_offset_min INTEGER NOT NULL,
    arrival_utc          INTEGER NOT NULL,
    arrival_offset_min   INTEGER NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    UNIQUE (flight_number, departure_date)
);

CREATE TABLE passengers (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    flight_id  INTEGER NOT NULL REFERENCES flights (id),
    phone      TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    email      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (flight_id, phone)
);
