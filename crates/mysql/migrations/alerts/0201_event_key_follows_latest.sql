-- An event is a duplicate only when it repeats the flight's latest alert, so the same event may be
-- issued again after a different one (10:30, 11:00, back to 10:30). event_key becomes
-- "<event>@<time>#<seq of the alert it follows>": still unique per flight, so two identical
-- reports racing each other still make one alert.
ALTER TABLE alerts MODIFY event_key VARCHAR(64) NOT NULL;
