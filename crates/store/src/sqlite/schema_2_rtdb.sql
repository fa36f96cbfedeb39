-- The Realtime Database: each namespace's leaves by path ("a/b/c", "" for a primitive
-- root; an object's priority under "<path>/.priority"), and its rules.
CREATE TABLE rtdb_nodes (
    ns    TEXT NOT NULL,
    path  TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (ns, path)
);

CREATE TABLE rtdb_rules (
    ns     TEXT PRIMARY KEY,
    source TEXT NOT NULL
);

-- Each namespace's version, raised by every write and rules change: a write names the
-- version it was computed from, so instances writing one namespace at once are serialised.
CREATE TABLE rtdb_versions (
    ns      TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);
