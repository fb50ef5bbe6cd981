-- Brute-force protection: one row per password login or client authentication that failed, or
-- whose password is still being checked (`pending`), and per subject it counts against:
-- `login:<SHA-256 of the lower-cased login>`, `addr:<source address>`, `client:<client id>`.
-- The limits count the rows of a subject in a sliding window; every instance on the database
-- counts the same rows. The cleanup task deletes rows older than the window.
-- Must stay column-for-column identical between migrations/sqlite and migrations/postgres.
CREATE TABLE auth_failures (
    id      TEXT PRIMARY KEY NOT NULL,
    subject TEXT NOT NULL,
    at      BIGINT NOT NULL,
    pending BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX auth_failures_subject_idx ON auth_failures (subject, at);
CREATE INDEX auth_failures_at_idx ON auth_failures (at);
