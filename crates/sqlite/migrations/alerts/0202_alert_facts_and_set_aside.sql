-- What the SMS says is fixed when the alert is recorded (see the MySQL migration of that name).
ALTER TABLE alerts ADD COLUMN origin TEXT;
ALTER TABLE alerts ADD COLUMN destination TEXT;
ALTER TABLE alerts ADD COLUMN scheduled_departure_utc INTEGER;
ALTER TABLE alerts ADD COLUMN scheduled_offset_min INTEGER;

UPDATE alerts SET
    origin = (SELECT s.origin FROM flight_schedules s
              WHERE s.flight_number = alerts.flight_number AND s.departure_date = alerts.departure_date),
    destination = (SELECT s.destination FROM flight_schedules s
              WHERE s.flight_number = alerts.flight_number AND s.departure_date = alerts.departure_date),
    scheduled_departure_utc = (SELECT s.departure_utc FROM flight_schedules s
              WHERE s.flight_number = alerts.flight_number AND s.departure_date = alerts.departure_date),
    scheduled_offset_min = (SELECT s.departure_offset_min FROM flight_schedules s
              WHERE s.flight_number = alerts.flight_number AND s.departure_date = alerts.departure_date);

-- An outbox row the relay cannot process is set aside with its error (see the MySQL migration).
ALTER TABLE alert_outbox ADD COLUMN set_aside_at INTEGER;
