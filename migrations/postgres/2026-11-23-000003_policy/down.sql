DROP INDEX refresh_tokens_revoked_idx;
DROP INDEX refresh_tokens_consumed_idx;
DROP INDEX refresh_tokens_retry_idx;
DROP INDEX refresh_tokens_parent_idx;
ALTER TABLE refresh_tokens DROP COLUMN retry_count;
ALTER TABLE refresh_tokens DROP COLUMN retry_answer;
