-- Out-of-band codes (password reset, email verification, email change, sign-in links):
-- stored by the SHA-256 of the code, so a copy of the database redeems nothing. `doc`
-- holds the action (type, account, addresses); the reference emulator's listing needs the
-- code and link too, which are kept in emulator mode only.
CREATE TABLE oob_codes (
    code_hash  BLOB PRIMARY KEY,
    project    TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    doc        TEXT NOT NULL
);

CREATE INDEX oob_codes_by_scope ON oob_codes (project, tenant, created_at);
CREATE INDEX oob_codes_by_expiry ON oob_codes (expires_at);
