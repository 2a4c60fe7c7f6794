-- The flights function's tables: flights and their insured passengers.
-- Times are stored as UTC instants plus the offset they were given in, so the local departure
-- time can be shown as the origin sees it.
CREATE TABLE flights (
    id                   BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    flight_number        VARCHAR(7)      NOT NULL,
    departure_date       DATE            NOT NULL,
    origin               CHAR(3)         NOT NULL,
    destination          CHAR(3)         NOT NULL,
    departure_utc        DATETIME        NOT NULL,
    departure_offset_min SMALLINT        NOT NULL,
    arrival_utc          DATETIME        NOT NULL,
    arrival_offset_min   SMALLINT        NOT NULL,
    created_at           DATETIME(6)     NOT NULL,
    updated_at           DATETIME(6)     NOT NULL,
    UNIQUE KEY flights_identity (flight_number, departure_date)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE passengers (
    id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    flight_id  BIGINT UNSIGNED NOT NULL,
    phone      VARCHAR(16)     NOT NULL,
    name       VARCHAR(100)    NOT NULL,
    email      VARCHAR(254)    NOT NULL,
    created_at DATETIME(6)     NOT NULL,
    updated_at DATETIME(6)     NOT NULL,
    UNIQUE KEY passengers_per_flight (flight_id, phone),
    CONSTRAINT passengers_flight FOREIGN KEY (flight_id) REFERENCES flights (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
