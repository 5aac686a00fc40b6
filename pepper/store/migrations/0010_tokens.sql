-- 0010: API tokens of `pepper serve`, by name. Only a hash of each secret is kept (the secret is shown
-- once, when the token is made); a revoked token keeps its row, with revoked_at set, until its name is reused.

CREATE TABLE tokens (
    name         TEXT PRIMARY KEY,
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    secret_hash  TEXT NOT NULL,
    created_at   REAL NOT NULL,
    revoked_at   REAL,
    last_used_at REAL
);
CREATE UNIQUE INDEX tokens_by_hash ON tokens (secret_hash);
