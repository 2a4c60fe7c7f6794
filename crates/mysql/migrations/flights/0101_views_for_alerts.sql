-- The narrow, read-only window the alerts function gets on flights data: the schedule it needs
-- to check an event and write the SMS, and the phones to text. No names, no emails.
CREATE VIEW flight_schedules AS
SELECT flight_number, departure_date, origin, destination, departure_utc, departure_offset_min
FROM flights;

CREATE VIEW passenger_phones AS
SELECT f.flight_number, f.departure_date, p.phone
FROM passengers p
JOIN flights f ON f.id = p.flight_id;
