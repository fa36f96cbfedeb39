-- Version 1: accounts, sessions, keys, credentials, project settings. Key text columns
-- sort bytewise (COLLATE "C"), as SQLite does, whatever the database's locale.
CREATE TABLE accounts (
    project         TEXT NOT NULL,
    tenant          TEXT NOT NULL DEFAULT '',
    local_id        TEXT COLLATE "C" NOT NULL,
    email           TEXT COLLATE "C",
    phone           TEXT,
    doc             TEXT NOT NULL,
    last_login_at   BIGINT,
    last_refresh_at BIGINT,
    -- Bumped by every document write: updates are compare-and-set on it.
    version         BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (project, tenant, local_id)
);
CREATE UNIQUE INDEX accounts_email ON accounts (project, tenant, email) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX accounts_phone ON accounts (project, tenant, phone) WHERE phone IS NOT NULL;

CREATE TABLE federated_ids (
    project     TEXT NOT NULL,
    tenant      TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    raw_id      TEXT NOT NULL,
    local_id    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project, tenant, provider_id, raw_id)
);
CREATE INDEX federated_ids_by_account ON federated_ids (project, tenant, local_id);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    project      TEXT NOT NULL,
    tenant       TEXT NOT NULL,
    local_id     TEXT COLLATE "C" NOT NULL,
    refresh_hash BYTEA NOT NULL UNIQUE,
    provider     TEXT NOT NULL,
    extra_claims TEXT NOT NULL,
    auth_time    BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    ip           TEXT,
    user_agent   TEXT,
    -- Why the session ended (e.g. `user_deleted`); NULL while it is live.
    revoked      TEXT,
    -- Refresh-token rotation: when the current token replaced the previous one, and the
    -- current token sealed with the master key, handed to a parallel refresh that presents
    -- the previous token within the grace window.
    rotated_at   BIGINT,
    successor    BYTEA
);
CREATE INDEX sessions_by_account ON sessions (project, tenant, local_id);

-- Refresh tokens rotated out of a session. Presenting one after the grace window is a
-- theft signal.
CREATE TABLE superseded_refresh_tokens (
    hash          BYTEA PRIMARY KEY,
    session_id    TEXT NOT NULL,
    superseded_at BIGINT NOT NULL
);
CREATE INDEX superseded_by_session ON superseded_refresh_tokens (session_id);

-- Audit log and revocation feed: every session transition, in commit order.
CREATE TABLE events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project    TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    local_id   TEXT COLLATE "C" NOT NULL,
    session_id TEXT,
    kind       TEXT NOT NULL,
    at         BIGINT NOT NULL,
    ip         TEXT,
    user_agent TEXT,
    detail     TEXT NOT NULL
);
CREATE INDEX events_by_account ON events (project, tenant, local_id, id);
CREATE INDEX events_by_project ON events (project, id);

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    purpose      TEXT NOT NULL,
    private_key  BYTEA NOT NULL,
    public_key   BYTEA NOT NULL,
    cert_pem     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    activates_at BIGINT NOT NULL,
    retired_at   BIGINT
);

CREATE TABLE api_keys (
    key        TEXT PRIMARY KEY,
    project    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE admin_tokens (
    id         TEXT PRIMARY KEY,
    project    TEXT,
    token_hash BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE service_accounts (
    client_email   TEXT PRIMARY KEY,
    project        TEXT NOT NULL,
    private_key_id TEXT NOT NULL,
    public_key     BYTEA NOT NULL,
    created_at     BIGINT NOT NULL
);

CREATE TABLE project_configs (
    project TEXT PRIMARY KEY,
    config  TEXT NOT NULL
);
