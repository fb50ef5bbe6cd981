DROP INDEX auth_failures_at_idx;
DROP INDEX auth_failures_subject_idx;
DROP TABLE auth_failures;
