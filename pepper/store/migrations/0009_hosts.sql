-- 0009: resources per host. Machine resources (cpu, memory, ...) are a pool per host; host '*' marks a
-- pool shared by the whole cluster. Each lease records the host it was taken on. Rows stored before have
-- host '' until the first runtime that opens the database for writing claims them for its host.

ALTER TABLE pool RENAME TO pool_before_hosts;

CREATE TABLE pool (
    host     TEXT NOT NULL,
    resource TEXT NOT NULL,
    capacity REAL NOT NULL CHECK (capacity >= 0),
    PRIMARY KEY (host, resource)
);

INSERT INTO pool (host, resource, capacity) SELECT '', resource, capacity FROM pool_before_hosts;

DROP TABLE pool_before_hosts;

ALTER TABLE leases ADD COLUMN host TEXT NOT NULL DEFAULT '';
