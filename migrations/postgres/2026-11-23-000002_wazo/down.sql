DROP INDEX users_tenant_idx;
DROP INDEX sessions_tenant_idx;
ALTER TABLE access_tokens DROP COLUMN metadata;
DROP INDEX refresh_tokens_wazo_one_per_client_idx;
ALTER TABLE refresh_tokens DROP COLUMN metadata;
ALTER TABLE refresh_tokens DROP COLUMN mobile;
DROP TABLE tenants;
