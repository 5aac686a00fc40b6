-- 0002: API tokens of `pepper serve` (SQLite's migration 0010), in PostgreSQL's types.

CREATE TABLE tokens (
    name         TEXT COLLATE "C" PRIMARY KEY,
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    secret_hash  TEXT COLLATE "C" NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL,
    revoked_at   DOUBLE PRECISION,
    last_used_at DOUBLE PRECISION
);
CREATE UNIQUE INDEX tokens_by_hash ON tokens (secret_hash);
