-- The Wazo dialect: tenants (for `?tenant=` and `Wazo-Tenant`), the mobile flag and persistent
-- metadata of refresh tokens, the metadata snapshot of access tokens, and at most one live Wazo
-- refresh token per (user, client_id). Must stay column-for-column identical to
-- migrations/postgres.
CREATE TABLE tenants (
    uuid        TEXT PRIMARY KEY NOT NULL,
    parent_uuid TEXT,
    name        TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);
CREATE INDEX tenants_parent_idx ON tenants (parent_uuid);

ALTER TABLE refresh_tokens ADD COLUMN mobile BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE refresh_tokens ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
CREATE UNIQUE INDEX refresh_tokens_wazo_one_per_client_idx ON refresh_tokens (user_id, client_id)
    WHERE dialect = 'wazo' AND revoked_at IS NULL AND consumed_at IS NULL;

ALTER TABLE access_tokens ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
CREATE INDEX sessions_tenant_idx ON sessions (tenant_uuid);
CREATE INDEX users_tenant_idx ON users (tenant_uuid);
