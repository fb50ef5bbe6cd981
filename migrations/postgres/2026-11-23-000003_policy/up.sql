-- The policy engine: exact retry and retention. A consumed refresh token may hold the sealed
-- answer of the refresh that consumed it (ChaCha20-Poly1305 under a key derived from the token
-- itself, so this column alone reveals nothing) and counts the retries it served. Children are
-- found by parent (a replay is a retry only while its successor is the family's live token).
-- Must stay column-for-column identical between migrations/sqlite and migrations/postgres.
ALTER TABLE refresh_tokens ADD COLUMN retry_answer TEXT;
ALTER TABLE refresh_tokens ADD COLUMN retry_count BIGINT NOT NULL DEFAULT 0;
CREATE INDEX refresh_tokens_parent_idx ON refresh_tokens (parent_id);
CREATE INDEX refresh_tokens_retry_idx ON refresh_tokens (consumed_at) WHERE retry_answer IS NOT NULL;
CREATE INDEX refresh_tokens_consumed_idx ON refresh_tokens (consumed_at) WHERE consumed_at IS NOT NULL;
CREATE INDEX refresh_tokens_revoked_idx ON refresh_tokens (revoked_at) WHERE revoked_at IS NOT NULL;
