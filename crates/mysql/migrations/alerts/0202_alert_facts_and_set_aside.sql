-- What the SMS says is fixed when the alert is recorded: the route and scheduled departure are
-- copied from the flight in the alert's own transaction, so a re-registration before or during
-- publication cannot change an alert's text, nor make two parts of it say different things.
ALTER TABLE alerts
    ADD COLUMN origin                  CHAR(3)  NULL,
    ADD COLUMN destination             CHAR(3)  NULL,
    ADD COLUMN scheduled_departure_utc DATETIME NULL,
    ADD COLUMN scheduled_offset_min    SMALLINT NULL;

UPDATE alerts a
JOIN flight_schedules s ON s.flight_number = a.flight_number AND s.departure_date = a.departure_date
SET a.origin = s.origin,
    a.destination = s.destination,
    a.scheduled_departure_utc = s.departure_utc,
    a.scheduled_offset_min = s.departure_offset_min;

-- An outbox row the relay cannot process is set aside with its error, so it stops blocking the
-- alerts behind it; GET /alerts shows it as a failed publication.
ALTER TABLE alert_outbox ADD COLUMN set_aside_at DATETIME(6) NULL;
