CREATE INDEX refresh_tokens_parent_idx ON refresh_tokens (parent_id);
