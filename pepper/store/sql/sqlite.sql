-- Statements only SQLite runs. A write transaction's change number (next_change_seq, see queries.sql) is read
-- by pepper_tx_seq(), a function of the connection that answers the number its store took last.

-- name: awaited_by_blocked
SELECT 1 FROM tasks, json_each(tasks.dependencies) AS dep
WHERE tasks.state = 'blocked' AND dep.value IN ({ids}) LIMIT 1;

-- name: blocked_dependents
-- Blocked tasks listing one of the ids among their dependencies (no row of any other task is read back).
SELECT DISTINCT tasks.* FROM tasks, json_each(tasks.dependencies) AS dep
WHERE tasks.state = 'blocked' AND dep.value IN ({ids}) ORDER BY tasks.seq;

-- name: cancelled_dependents
-- Cancelled tasks listing one of the ids among their dependencies (no row of any other task is read back).
SELECT DISTINCT tasks.* FROM tasks, json_each(tasks.dependencies) AS dep
WHERE tasks.state = 'cancelled' AND dep.value IN ({ids}) ORDER BY tasks.seq;
