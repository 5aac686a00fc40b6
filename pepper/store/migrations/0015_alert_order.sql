-- 0015: each alert takes a number as it is stored, in the order alerts are stored (never again after a prune):
-- readers follow alerts by it, never by the time a worker's clock gave them. The table is rebuilt (SQLite numbers
-- for ever only an INTEGER PRIMARY KEY AUTOINCREMENT); the alerts already there are numbered oldest first.

ALTER TABLE alerts RENAME TO alerts_unnumbered;

CREATE TABLE alerts (
    alert_id  TEXT NOT NULL UNIQUE,
    rule_id   TEXT NOT NULL,
    source    TEXT NOT NULL,
    subject   TEXT,
    metric    TEXT NOT NULL,
    value     REAL,
    threshold REAL NOT NULL,
    above     INTEGER NOT NULL,
    at        REAL NOT NULL,
    message   TEXT NOT NULL,
    seq       INTEGER PRIMARY KEY AUTOINCREMENT
);

INSERT INTO alerts (alert_id, rule_id, source, subject, metric, value, threshold, above, at, message)
SELECT alert_id, rule_id, source, subject, metric, value, threshold, above, at, message
FROM alerts_unnumbered ORDER BY at, rowid;

DROP TABLE alerts_unnumbered;

CREATE INDEX alerts_by_time ON alerts (at);
