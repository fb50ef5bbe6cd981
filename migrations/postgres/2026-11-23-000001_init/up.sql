-- Tessera initial schema (PostgreSQL). Portable types only: TEXT ids, BIGINT epoch seconds,
-- BOOLEAN, TEXT JSON. Must stay column-for-column identical to migrations/sqlite.
CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL,
    username_key  TEXT NOT NULL UNIQUE,
    email         TEXT,
    email_confirmed BOOLEAN NOT NULL DEFAULT FALSE,
    password_hash TEXT,
    enabled       BOOLEAN NOT NULL DEFAULT TRUE,
    acl           TEXT NOT NULL DEFAULT '[]',
    tenant_uuid   TEXT NOT NULL,
    purpose       TEXT NOT NULL DEFAULT 'user',
    created_at    BIGINT NOT NULL
);
CREATE INDEX users_email_idx ON users (email);

CREATE TABLE clients (
    id             TEXT PRIMARY KEY NOT NULL,
    secret_hash    TEXT,
    grant_types    TEXT NOT NULL DEFAULT '[]',
    scopes         TEXT NOT NULL DEFAULT '[]',
    default_scopes TEXT NOT NULL DEFAULT '[]',
    created_at     BIGINT NOT NULL
);

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT REFERENCES users (id) ON DELETE CASCADE,
    client_id   TEXT,
    tenant_uuid TEXT,
    mobile      BOOLEAN NOT NULL DEFAULT FALSE,
    user_agent  TEXT NOT NULL DEFAULT '',
    remote_addr TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE refresh_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    family_id    TEXT NOT NULL,
    parent_id    TEXT,
    generation   BIGINT NOT NULL DEFAULT 0,
    client_id    TEXT NOT NULL,
    user_id      TEXT REFERENCES users (id) ON DELETE CASCADE,
    session_id   TEXT,
    dialect      TEXT NOT NULL,
    scopes       TEXT NOT NULL DEFAULT '[]',
    issued_at    BIGINT NOT NULL,
    family_issued_at BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    consumed_at  BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX refresh_tokens_user_client_idx ON refresh_tokens (user_id, client_id);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

CREATE TABLE access_tokens (
    hash        TEXT PRIMARY KEY NOT NULL,
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    user_id     TEXT REFERENCES users (id) ON DELETE CASCADE,
    client_id   TEXT,
    family_id   TEXT,
    dialect     TEXT NOT NULL,
    scopes      TEXT NOT NULL DEFAULT '[]',
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX access_tokens_session_idx ON access_tokens (session_id);
CREATE INDEX access_tokens_user_client_idx ON access_tokens (user_id, client_id);
CREATE INDEX access_tokens_family_idx ON access_tokens (family_id);
CREATE INDEX access_tokens_expires_idx ON access_tokens (expires_at);
