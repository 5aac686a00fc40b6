-- Statements only SQLite runs. A write transaction keeps the change number it took
-- (next_change_seq, see queries.sql) in the connection's temporary table tx.

-- name: create_tx_table
CREATE TEMP TABLE IF NOT EXISTS tx (seq INTEGER NOT NULL);

-- name: set_tx_seq
UPDATE temp.tx SET seq = ?;

-- name: init_tx_seq
INSERT INTO temp.tx (seq) VALUES (0);

-- name: awaited_by_blocked
SELECT 1 FROM tasks, json_each(tasks.dependencies) AS dep
WHERE tasks.state = 'blocked' AND dep.value IN ({ids}) LIMIT 1;

-- name: blocked_dependents
-- Blocked tasks listing one of the ids among their dependencies (no row of any other task is read back).
SELECT DISTINCT tasks.* FROM tasks, json_each(tasks.dependencies) AS dep
WHERE tasks.state = 'blocked' AND dep.value IN ({ids}) ORDER BY tasks.seq;
