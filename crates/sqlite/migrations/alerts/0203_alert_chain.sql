-- Each alert names the alert of its flight it follows (see the MySQL migration of that name).
ALTER TABLE alerts ADD COLUMN follows_seq INTEGER;
CREATE UNIQUE INDEX alerts_chain ON alerts (flight_number, departure_date, follows_seq);
