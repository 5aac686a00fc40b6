-- Statements only PostgreSQL runs, or spells its own way. A write transaction keeps the
-- change number it took (next_change_seq, see queries.sql) in the transaction-local
-- setting pepper.tx_seq.

-- name: take_change_seq
-- next_change_seq (see queries.sql), kept in the setting for the statements of this transaction.
SELECT set_config('pepper.tx_seq', (COALESCE(MAX(highest), 0) + 1)::text, true)
FROM (SELECT MAX(change_seq) AS highest FROM tasks UNION ALL SELECT MAX(change_seq) FROM pruned_tasks) AS counted;

-- name: serialise_writers
-- Held until the transaction ends: write transactions follow one another, as on SQLite.
SELECT pg_advisory_xact_lock(?);

-- name: notify_and_commit
-- The end of a write transaction: its notification is delivered as it commits, naming the store that sent it
-- ({sender}: a token of its own, so that its listener knows its own commits).
NOTIFY pepper_changes, '{sender}'; COMMIT;

-- name: listen_changes
LISTEN pepper_changes;

-- name: awaited_by_blocked
SELECT 1 FROM tasks, jsonb_array_elements_text(tasks.dependencies::jsonb) AS dep(value)
WHERE tasks.state = 'blocked' AND dep.value IN ({ids}) LIMIT 1;

-- name: blocked_dependents
-- Blocked tasks listing one of the ids among their dependencies (no row of any other task is read back).
SELECT DISTINCT tasks.* FROM tasks, jsonb_array_elements_text(tasks.dependencies::jsonb) AS dep(value)
WHERE tasks.state = 'blocked' AND dep.value IN ({ids}) ORDER BY tasks.seq;

-- name: cancelled_dependents
-- Cancelled tasks listing one of the ids among their dependencies (no row of any other task is read back).
SELECT DISTINCT tasks.* FROM tasks, jsonb_array_elements_text(tasks.dependencies::jsonb) AS dep(value)
WHERE tasks.state = 'cancelled' AND dep.value IN ({ids}) ORDER BY tasks.seq;

-- name: database_size
SELECT pg_database_size(current_database());

-- name: save_task_bulk
-- save_task for many rows in one statement: each parameter is the array of one column (ids unique).
UPDATE tasks SET
    state = v.state, attempts = v.attempts, failures = v.failures, agent_id = v.agent_id, owner = v.owner,
    ready_at = v.ready_at, started_at = v.started_at, finished_at = v.finished_at,
    next_attempt_at = v.next_attempt_at, result = v.result, error = v.error, reason = v.reason,
    progress = v.progress, progress_message = v.progress_message, cancel_requested = v.cancel_requested,
    placement = v.placement, recovery = v.recovery, parked_at = v.parked_at, outcome = v.outcome,
    writer = v.writer,
    version = tasks.version + 1,
    change_seq = {tx_seq}
FROM unnest(
    ?::text[], ?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::float8[], ?::float8[], ?::float8[],
    ?::float8[], ?::text[], ?::text[], ?::text[], ?::float8[], ?::text[], ?::bigint[], ?::text[],
    ?::text[], ?::float8[], ?::text[], ?::text[], ?::text[], ?::bigint[]
) AS v(state, attempts, failures, agent_id, owner, ready_at, started_at, finished_at, next_attempt_at, result,
       error, reason, progress, progress_message, cancel_requested, placement, recovery, parked_at, outcome,
       writer, task_id, version)
WHERE tasks.task_id = v.task_id AND tasks.version = v.version;

-- name: insert_task_bulk
-- insert_task for many rows in one statement, stored in the order given.
INSERT INTO tasks (
    task_id, task_type, priority, dependencies, inputs, agent, requirements,
    timeout, max_retries, metadata, created_at, policy, not_before, state, ready_at, change_seq, writer
)
SELECT v.task_id, v.task_type, v.priority, v.dependencies, v.inputs, v.agent, v.requirements, v.timeout,
       v.max_retries, v.metadata, v.created_at, v.policy, v.not_before, v.state, v.ready_at, {tx_seq}, v.writer
FROM unnest(
    ?::text[], ?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::float8[], ?::bigint[],
    ?::text[], ?::float8[], ?::text[], ?::float8[], ?::text[], ?::float8[], ?::text[]
) WITH ORDINALITY AS v(task_id, task_type, priority, dependencies, inputs, agent, requirements, timeout,
                       max_retries, metadata, created_at, policy, not_before, state, ready_at, writer, n)
ORDER BY v.n
ON CONFLICT (task_id) DO NOTHING;

-- name: record_attempt_bulk
-- record_attempt for many rows in one statement.
INSERT INTO attempts (task_id, attempt, agent_id, worker_id, task_type, started_at, ended_at, outcome, error)
SELECT * FROM unnest(
    ?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::float8[], ?::float8[], ?::text[], ?::text[]
)
ON CONFLICT (task_id, attempt) DO NOTHING;

-- name: prunable_alerts
-- as in queries.sql; a rule's name is compared as alert_states keeps it (COLLATE "C")
SELECT alert_id FROM alerts WHERE at < :horizon AND (source <> 'config' OR alert_id IN (
    SELECT a.alert_id FROM alerts AS a
    JOIN (SELECT rule_id, MAX(CASE WHEN at < :horizon THEN at END) AS last_before, MAX(at) AS last_at
          FROM alerts WHERE source = 'config' GROUP BY rule_id) AS r ON r.rule_id = a.rule_id
    LEFT JOIN alert_states AS s ON s.rule = a.rule_id COLLATE "C"
    WHERE a.source = 'config' AND a.at < :horizon
      AND (a.at < r.last_before
           OR (r.last_before = r.last_at AND (s.rule IS NULL OR (s.firing = 0 AND s.changed_at < :horizon))))));

