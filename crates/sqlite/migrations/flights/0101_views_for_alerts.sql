-- The narrow, read-only window the alerts function gets on flights data. No names, no emails.
CREATE VIEW flight_schedules AS
SELECT flight_number, departure_date, origin, destination, departure_utc, departure_offset_min
FROM flights;

CREATE VIEW passenger_phones AS
SELECT f.flight_number, f.departure_date, p.phone
FROM passengers p
JOIN flights f ON f.id = p.flight_id;
