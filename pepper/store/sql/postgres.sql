-- Statements only PostgreSQL runs, or spells its own way. A write transaction keeps the
-- change number it took (next_change_seq, see queries.sql) in the transaction-local
-- setting pepper.tx_seq.

-- name: set_tx_seq
SELECT set_config('pepper.tx_seq', ?, true);

-- name: serialise_writers
-- Held until the transaction ends: write transactions follow one another, as on SQLite.
SELECT pg_advisory_xact_lock(?);

-- name: notify_change
NOTIFY pepper_changes;

-- name: listen_changes
LISTEN pepper_changes;

-- name: awaited_by_blocked
SELECT 1 FROM tasks, jsonb_array_elements_text(tasks.dependencies::jsonb) AS dep(value)
WHERE tasks.state = 'blocked' AND dep.value IN ({ids}) LIMIT 1;

-- name: blocked_dependents
-- Blocked tasks listing one of the ids among their dependencies (no row of any other task is read back).
SELECT DISTINCT tasks.* FROM tasks, jsonb_array_elements_text(tasks.dependencies::jsonb) AS dep(value)
WHERE tasks.state = 'blocked' AND dep.value IN ({ids}) ORDER BY tasks.seq;

-- name: database_size
SELECT pg_database_size(current_database());
