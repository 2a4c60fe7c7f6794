-- Each alert names the alert of its flight it follows (0 for the first), uniquely: of two alerts
-- recorded at once for one flight, one commits and the other, retried, sees it. So the spend
-- limits (alerts per flight per day) hold under concurrency without locking. Alerts recorded
-- before keep NULL, which the unique key ignores.
ALTER TABLE alerts
    ADD COLUMN follows_seq BIGINT UNSIGNED NULL,
    ADD UNIQUE KEY alerts_chain (flight_number, departure_date, follows_seq);
