-- The SMS budget's schedule (see the MySQL migration of that name); unix microseconds.
CREATE TABLE sms_pace (
    id           INTEGER PRIMARY KEY,
    next_slot_at INTEGER NOT NULL
);

INSERT INTO sms_pace (id, next_slot_at) VALUES (1, 0);
