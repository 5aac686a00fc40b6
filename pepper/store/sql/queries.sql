-- Every SQL statement pepper runs, by name, as both SQLite and PostgreSQL run it (each
-- database's own file, sqlite.sql or postgres.sql, adds or replaces a few). `{ids}`
-- expands to a list of placeholders; `{tx_seq}` is the change number this write
-- transaction took (next_change_seq: writers are serialised, so it only grows).

-- name: next_change_seq
SELECT COALESCE(MAX(highest), 0) + 1
FROM (SELECT MAX(change_seq) AS highest FROM tasks UNION ALL SELECT MAX(change_seq) FROM pruned_tasks) AS counted;

-- name: current_change_seq
SELECT COALESCE(MAX(highest), 0)
FROM (SELECT MAX(change_seq) AS highest FROM tasks UNION ALL SELECT MAX(change_seq) FROM pruned_tasks) AS counted;

-- name: insert_task
INSERT INTO tasks (
    task_id, task_type, priority, dependencies, inputs, agent, requirements,
    timeout, max_retries, metadata, created_at, policy, not_before, state, ready_at, change_seq, writer
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
          {tx_seq}, ?)
ON CONFLICT (task_id) DO NOTHING;

-- name: save_task
UPDATE tasks SET
    state = ?, attempts = ?, failures = ?, agent_id = ?, owner = ?, ready_at = ?,
    started_at = ?, finished_at = ?, next_attempt_at = ?, result = ?, error = ?,
    reason = ?, progress = ?, progress_message = ?, cancel_requested = ?, placement = ?,
    recovery = ?, parked_at = ?, outcome = ?, writer = ?,
    version = version + 1,
    change_seq = {tx_seq}
WHERE task_id = ? AND version = ?;

-- name: record_attempt
-- Written only beside a write of its task that went through (the store checks).
INSERT INTO attempts (
    task_id, attempt, agent_id, worker_id, task_type, started_at, ended_at, outcome, error
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (task_id, attempt) DO NOTHING;

-- name: written_in_this_transaction
SELECT task_id FROM tasks
WHERE task_id IN ({ids}) AND writer = ?
  AND change_seq = {tx_seq};

-- name: tasks_by_id
SELECT * FROM tasks WHERE task_id IN ({ids});

-- name: unfinished_tasks
SELECT * FROM tasks WHERE state NOT IN ('completed', 'failed', 'cancelled') ORDER BY seq;

-- name: changed_tasks
-- The tasks others wrote after a change number, each beside the highest change number now, read together (one
-- row holding only that number when there are none).
SELECT latest.change_seq_now, tasks.*
FROM (SELECT COALESCE(MAX(highest), 0) AS change_seq_now
      FROM (SELECT MAX(change_seq) AS highest FROM tasks UNION ALL SELECT MAX(change_seq) FROM pruned_tasks) AS counted
     ) AS latest
LEFT JOIN tasks ON tasks.change_seq > ? AND (tasks.writer IS NULL OR tasks.writer != ?)
ORDER BY tasks.seq;

-- name: list_tasks
SELECT * FROM tasks ORDER BY seq DESC LIMIT ?;

-- name: list_tasks_in_state
SELECT * FROM tasks WHERE state = ? ORDER BY seq DESC LIMIT ?;

-- name: list_tasks_page
-- A page of tasks, newest first, optionally of one state and type, whose lowered id is like :id_like (ASCII
-- letters lowered: LOWER does no more in either database), after (older than) one task. That task is named by
-- its place in submission order :after_seq when known, else by its id and its submission time :after_at when
-- known: if it is no longer stored (pruned, or pruned and its id submitted again since), the page goes on from
-- before the oldest task submitted after that time (every task when there is none).
SELECT * FROM tasks
WHERE (CAST(:state AS TEXT) IS NULL OR state = :state)
  AND (CAST(:task_type AS TEXT) IS NULL OR task_type = :task_type)
  AND (CAST(:id_like AS TEXT) IS NULL OR LOWER(task_id) LIKE :id_like ESCAPE '\')
  AND (CAST(:after AS TEXT) IS NULL OR seq < COALESCE(
        CAST(:after_seq AS BIGINT),
        (SELECT named.seq FROM tasks AS named WHERE named.task_id = :after
           AND (CAST(:after_at AS DOUBLE PRECISION) IS NULL OR named.created_at = :after_at)),
        (SELECT MIN(later.seq) FROM tasks AS later WHERE later.created_at > :after_at),
        CASE WHEN CAST(:after_at AS DOUBLE PRECISION) IS NULL THEN NULL ELSE seq + 1 END))
ORDER BY seq DESC LIMIT :limit;

-- name: count_by_state
SELECT state, COUNT(*) AS n FROM tasks GROUP BY state;

-- name: ready_ahead_routes
-- Ready tasks served before one (ageing key ``rate * ready time - priority``, then submission order),
-- counted by what decides who can take them: one row per route, whatever the backlog.
SELECT task_type, agent, placement, requirements, COUNT(*) AS n FROM tasks
WHERE state = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= :now)
  AND (not_before IS NULL OR not_before <= :now) AND task_id != :task_id
  AND (:rate * COALESCE(ready_at, created_at) - priority < :key
       OR (:rate * COALESCE(ready_at, created_at) - priority = :key AND seq < :seq))
GROUP BY task_type, agent, placement, requirements;

-- name: task_seq
SELECT seq FROM tasks WHERE task_id = ?;

-- name: task_place
SELECT seq FROM tasks WHERE task_id = ? AND created_at = ?;

-- name: ready_tasks
SELECT * FROM tasks
WHERE state = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= :now)
  AND (not_before IS NULL OR not_before <= :now)
ORDER BY seq;

-- name: ready_routes
-- Ready tasks counted by what decides who can take them.
SELECT task_type, agent, placement, requirements, recovery, COUNT(*) AS n FROM tasks
WHERE state = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= :now)
  AND (not_before IS NULL OR not_before <= :now)
GROUP BY task_type, agent, placement, requirements, recovery;

-- name: unfinished_count
-- Tasks a worker still has to do: ready, waiting out a retry delay, blocked, or running (parked ones wait for a person).
SELECT COUNT(*) FROM tasks WHERE state IN ('blocked', 'pending', 'in_progress');

-- name: running_tasks
SELECT agent_id, task_type, started_at FROM tasks WHERE state = 'in_progress';

-- name: running_by_agent
SELECT agent_id, COUNT(*) AS n FROM tasks WHERE state = 'in_progress' GROUP BY agent_id;

-- name: attempts_of_task
SELECT * FROM attempts WHERE task_id = ? ORDER BY attempt;

-- name: register_worker
INSERT INTO workers (worker_id, hostname, pid, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?);

-- name: heartbeat
UPDATE workers SET heartbeat_at = ? WHERE worker_id = ? AND stopped_at IS NULL;

-- name: stop_worker
UPDATE workers SET stopped_at = ? WHERE worker_id = ? AND stopped_at IS NULL;

-- name: live_workers
SELECT * FROM workers WHERE stopped_at IS NULL ORDER BY started_at;

-- name: register_agent
INSERT INTO agents (agent_id, worker_id, spec, registered_at) VALUES (?, ?, ?, ?)
ON CONFLICT (agent_id, worker_id) DO UPDATE SET spec = excluded.spec, registered_at = excluded.registered_at;

-- name: unregister_agent
DELETE FROM agents WHERE agent_id = ? AND worker_id = ?;

-- name: forget_worker_agents
DELETE FROM agents WHERE worker_id = ?;

-- name: live_agents
SELECT agents.agent_id, agents.worker_id, agents.spec, agents.registered_at,
       workers.hostname, workers.pid
FROM agents JOIN workers USING (worker_id)
WHERE workers.stopped_at IS NULL
ORDER BY agents.registered_at;

-- name: probe_write
-- A write of a row over itself, rolled back by the health probe: a database that takes no writes refuses it.
UPDATE schema_version SET applied_at = applied_at WHERE version = (SELECT MAX(version) FROM schema_version);

-- name: live_agents_signature
-- Changes when an agent of a live worker comes or goes: cheap enough to read at every poll.
SELECT COUNT(*) AS n, MAX(agents.registered_at) AS latest
FROM agents JOIN workers USING (worker_id)
WHERE workers.stopped_at IS NULL;

-- name: live_agents_of_others
SELECT agents.agent_id, agents.worker_id, agents.spec, agents.registered_at,
       workers.hostname, workers.pid
FROM agents JOIN workers USING (worker_id)
WHERE workers.stopped_at IS NULL AND agents.worker_id <> ?
ORDER BY agents.registered_at;

-- name: revive_worker
UPDATE workers SET stopped_at = NULL, heartbeat_at = ? WHERE worker_id = ?;

-- name: pool_of_host
SELECT resource, capacity FROM pool WHERE host = ? ORDER BY resource;

-- name: pool_here
-- This host's machine pools and the shared ones ('*').
SELECT host, resource, capacity FROM pool WHERE host = ? OR host = '*' ORDER BY resource;

-- name: every_pool
SELECT host, resource, capacity FROM pool ORDER BY resource;

-- name: clear_pool_of_host
DELETE FROM pool WHERE host = ?;

-- name: set_pool
INSERT INTO pool (host, resource, capacity) VALUES (?, ?, ?)
ON CONFLICT (host, resource) DO UPDATE SET capacity = excluded.capacity;

-- name: claim_pool
-- Rows stored before pools were kept per host belong to the first host that opens the database to write.
UPDATE pool SET host = ? WHERE host = '';

-- name: claim_leases
UPDATE leases SET host = ? WHERE host = '';

-- name: insert_lease
INSERT INTO leases (lease_id, holder, kind, resources, granted_at, expires_at, released_at, worker_id, task_id,
                    in_budget, host)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: lease_by_id
SELECT * FROM leases WHERE lease_id = ?;

-- name: unreleased_leases
SELECT * FROM leases WHERE released_at IS NULL ORDER BY granted_at;

-- name: release_lease
UPDATE leases SET released_at = ? WHERE lease_id = ? AND released_at IS NULL;

-- name: renew_lease
UPDATE leases SET expires_at = ?
WHERE lease_id = ? AND released_at IS NULL AND (expires_at IS NULL OR expires_at > ?);

-- name: release_worker_leases
UPDATE leases SET released_at = ? WHERE worker_id = ? AND released_at IS NULL;

-- name: reap_expired_leases
UPDATE leases SET released_at = expires_at WHERE released_at IS NULL AND expires_at <= ?;

-- name: save_usage
INSERT INTO usage_samples (agent_id, worker_id, sampled_at, usage) VALUES (?, ?, ?, ?)
ON CONFLICT (agent_id, worker_id) DO UPDATE SET sampled_at = excluded.sampled_at, usage = excluded.usage;

-- name: usage_of_agent
SELECT * FROM usage_samples WHERE agent_id = ? ORDER BY sampled_at DESC;

-- name: insert_alert
INSERT INTO alerts (alert_id, rule_id, source, subject, metric, value, threshold, above, at, message)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: recent_alerts
SELECT * FROM alerts ORDER BY at DESC LIMIT ?;

-- name: alerts_after
SELECT * FROM alerts WHERE seq > ? ORDER BY seq LIMIT ?;

-- name: last_alert_seq
SELECT COALESCE(MAX(seq), 0) FROM alerts;

-- name: insert_feedback
INSERT INTO feedback (task_id, agent_id, task_type, rating, comment, metrics, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING feedback_id;

-- name: feedback_of_task
SELECT * FROM feedback WHERE task_id = ? ORDER BY feedback_id;

-- name: feedback_after
SELECT * FROM feedback WHERE feedback_id > ? ORDER BY feedback_id;

-- name: last_feedback_id
SELECT COALESCE(MAX(feedback_id), 0) FROM feedback;

-- name: ratings_since
SELECT agent_id, rating, created_at FROM feedback WHERE created_at >= ? AND agent_id IS NOT NULL ORDER BY created_at;

-- name: outcomes_since
-- Finished attempts to learn from: the last attempt of each task, and the earlier ones that failed or (before a
-- re-run of their workflow run) completed.
SELECT agent_id, task_type, CASE WHEN state = 'completed' THEN 1 ELSE 0 END AS ok, finished_at - started_at AS duration, finished_at AS at
FROM tasks WHERE state IN ('completed', 'failed') AND agent_id IS NOT NULL AND finished_at >= ?
UNION ALL
SELECT agent_id, task_type, CASE WHEN outcome = 'completed' THEN 1 ELSE 0 END, ended_at - started_at, ended_at
FROM attempts WHERE outcome IN ('retry', 'failed', 'completed') AND agent_id IS NOT NULL AND ended_at >= ?
ORDER BY at;

-- name: set_placement
UPDATE tasks SET placement = ?, writer = ?, version = version + 1, change_seq = {tx_seq}
WHERE task_id = ? AND state IN ('pending', 'blocked');

-- name: insert_run
-- Run ids are made fresh for each run: one already stored is this run's, from a commit reported failed that
-- went through all the same.
INSERT INTO runs (run_id, workflow, spec, inputs, state, created_at, driver, plan, schedule, parent)
VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)
ON CONFLICT (run_id) DO NOTHING;

-- name: runs_of_parent
-- The runs a step started (a sub-workflow), oldest first.
SELECT * FROM runs WHERE parent = ? ORDER BY created_at, run_id;

-- name: runs_of_parent_run
-- The runs started by steps of one run: parents from "<run_id>/" up to (not including) "<run_id>0".
SELECT * FROM runs WHERE parent >= ? AND parent < ? ORDER BY created_at, run_id;

-- name: request_approval
-- A step starts waiting for a person; a request already stored (a resumed run) keeps its deadline.
INSERT INTO approvals (task_id, run_id, step_id, approvers, requested_at, deadline)
VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (task_id) DO NOTHING;

-- name: approval_by_task
SELECT * FROM approvals WHERE task_id = ?;

-- name: approvals_of_run
SELECT * FROM approvals WHERE run_id = ? ORDER BY requested_at, task_id;

-- name: decide_approval
-- The first decision wins: a request already decided is left as it is.
UPDATE approvals SET decision = ?, decided_by = ?, reason = ?, decided_at = ?
WHERE task_id = ? AND decision IS NULL;

-- name: run_by_id
SELECT * FROM runs WHERE run_id = ?;

-- name: run_exists
SELECT 1 FROM runs WHERE run_id = ?;

-- name: list_runs
-- A page of runs, newest first, optionally in one state, of one workflow, after (older than) one run.
SELECT * FROM runs
WHERE (CAST(:state AS TEXT) IS NULL OR state = :state)
  AND (CAST(:workflow AS TEXT) IS NULL OR workflow = :workflow)
  AND (CAST(:after AS TEXT) IS NULL
       OR created_at < (SELECT created_at FROM runs WHERE run_id = :after)
       OR (created_at = (SELECT created_at FROM runs WHERE run_id = :after) AND run_id < :after))
ORDER BY created_at DESC, run_id DESC LIMIT :limit;

-- name: finish_run
UPDATE runs SET state = ?, reason = ?, finished_at = ? WHERE run_id = ? AND state = 'running';

-- name: reopen_run
-- A run that ended starts again (a re-run of some of its steps), driven by ?; 0 rows if it had not ended.
UPDATE runs SET state = 'running', finished_at = NULL, reason = NULL, cancel_requested = 0, driver = ?
WHERE run_id = ? AND state != 'running';

-- name: request_run_cancel
UPDATE runs SET cancel_requested = 1, reason = ? WHERE run_id = ? AND state = 'running';

-- name: set_run_driver
UPDATE runs SET driver = ? WHERE run_id = ? AND state = 'running';

-- name: run_tasks
-- The tasks of a run: ids from "<run_id>/" up to (not including) "<run_id>0", the next string after "/".
SELECT * FROM tasks WHERE task_id >= ? AND task_id < ? ORDER BY seq;

-- name: record_error
-- Written only beside a write of its task that went through (the store checks).
INSERT INTO errors (
    task_id, attempt, agent_id, worker_id, task_type, at, type, message, traceback, kind, strategy, action, detail
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: errors_of_task
SELECT * FROM errors WHERE task_id = ? ORDER BY error_id;

-- name: errors_of_agent
SELECT * FROM errors WHERE agent_id = ? ORDER BY error_id DESC LIMIT ?;

-- name: errors_of_run
SELECT * FROM errors WHERE task_id >= ? AND task_id < ? ORDER BY error_id;

-- name: recent_errors
SELECT * FROM errors ORDER BY error_id DESC LIMIT ?;

-- name: parked_tasks
SELECT * FROM tasks WHERE state = 'parked' ORDER BY parked_at;

-- name: parked_task_ids
SELECT task_id FROM tasks WHERE state = 'parked' ORDER BY parked_at;

-- name: parked_page
-- A page of the dead-letter queue: the parked tasks after a place (when parked, then id), oldest first.
SELECT * FROM tasks
WHERE state = 'parked'
  AND (COALESCE(parked_at, 0) > ? OR (COALESCE(parked_at, 0) = ? AND task_id > ?))
ORDER BY COALESCE(parked_at, 0), task_id
LIMIT ?;

-- name: ended_attempts_since
-- Attempts that ended after ?: the last attempt of each task, and earlier ones that failed or (before a re-run
-- of their workflow run) completed.
SELECT task_type, agent_id, CASE WHEN state = 'completed' THEN 1 ELSE 0 END AS ok, ready_at, started_at, finished_at AS at
FROM tasks WHERE state IN ('completed', 'failed') AND finished_at >= ? AND started_at IS NOT NULL
UNION ALL
SELECT task_type, agent_id, CASE WHEN outcome = 'completed' THEN 1 ELSE 0 END, NULL, started_at, ended_at
FROM attempts WHERE outcome IN ('retry', 'failed', 'completed') AND ended_at >= ?;

-- name: count_by_state_and_type
SELECT state, task_type, COUNT(*) AS n FROM tasks GROUP BY state, task_type;

-- name: count_runs_by_state
SELECT state, COUNT(*) AS n FROM runs GROUP BY state;

-- name: add_token
-- A new token, or one over a revoked token of the same name; a live token of that name is left alone (0 rows).
INSERT INTO tokens (name, scope, secret_hash, created_at) VALUES (?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET scope = excluded.scope, secret_hash = excluded.secret_hash,
    created_at = excluded.created_at, revoked_at = NULL, last_used_at = NULL
WHERE tokens.revoked_at IS NOT NULL;

-- name: live_token_by_hash
SELECT name, scope, secret_hash, created_at, revoked_at, last_used_at FROM tokens
WHERE secret_hash = ? AND revoked_at IS NULL;

-- name: list_tokens
-- Never the secrets' hashes: a listing has no use for them.
SELECT name, scope, created_at, revoked_at, last_used_at FROM tokens ORDER BY created_at, name;

-- name: revoke_token
UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL;

-- name: touch_token
UPDATE tokens SET last_used_at = ? WHERE name = ? AND revoked_at IS NULL;

-- name: schedule_by_name
SELECT * FROM schedules WHERE name = ?;

-- name: list_schedules
SELECT * FROM schedules ORDER BY name;

-- name: insert_schedule
INSERT INTO schedules (name, workflow, spec, inputs, cron, every, timezone, catch_up, next_fire_at, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: update_schedule
UPDATE schedules SET workflow = ?, spec = ?, inputs = ?, cron = ?, every = ?, timezone = ?, catch_up = ?,
    next_fire_at = ?, created_at = ?
WHERE name = ?;

-- name: pause_schedule
UPDATE schedules SET paused = ?, next_fire_at = ? WHERE name = ?;

-- name: delete_schedule
DELETE FROM schedules WHERE name = ?;

-- name: claim_tick
-- Move a schedule on from the tick read: of several workers reading the same tick, one changes the row.
UPDATE schedules SET next_fire_at = :next, last_fire_at = COALESCE(:fired, last_fire_at)
WHERE name = :name AND next_fire_at = :tick AND paused = 0;

-- name: note_schedule_run
UPDATE schedules SET last_run_id = ? WHERE name = ?;
-- name: append_log
INSERT INTO task_logs (task_id, attempt, seq, start_byte, end_byte, at, body, ended) VALUES (?, ?, ?, ?, ?, ?, ?, ?);

-- name: drop_log_chunk
DELETE FROM task_logs WHERE task_id = ? AND attempt = ? AND seq = ?;

-- name: log_chunks
SELECT attempt, seq, start_byte, end_byte, at, body, ended FROM task_logs
WHERE task_id = ? AND attempt = ? AND seq >= ? ORDER BY seq;

-- name: log_chunk_before
SELECT attempt, seq, start_byte, end_byte, at, body, ended FROM task_logs
WHERE task_id = ? AND attempt = ? AND seq < ? ORDER BY seq DESC LIMIT 1;

-- name: logged_attempts
SELECT DISTINCT attempt FROM task_logs WHERE task_id = ? ORDER BY attempt;

-- name: log_size
SELECT COALESCE(SUM(LENGTH(body)), 0) FROM task_logs WHERE task_id = ? AND attempt = ?;

-- name: ensure_alert_state
INSERT INTO alert_states (rule, firing, changed_at) VALUES (?, 0, ?) ON CONFLICT (rule) DO NOTHING;

-- name: fire_alert_state
UPDATE alert_states SET firing = 1, value = ?, changed_at = ?, fired_count = fired_count + 1
WHERE rule = ? AND firing = 0;

-- name: resolve_alert_state
UPDATE alert_states SET firing = 0, value = ?, changed_at = ? WHERE rule = ? AND firing = 1;

-- name: alert_states
SELECT rule, firing, value, changed_at, fired_count FROM alert_states ORDER BY rule;

-- name: prunable_tasks
SELECT * FROM tasks WHERE state IN ('completed', 'failed', 'cancelled') AND COALESCE(finished_at, created_at) < ?;

-- name: prunable_runs
SELECT run_id FROM runs WHERE state <> 'running' AND COALESCE(finished_at, created_at) < ?;

-- name: run_parents
SELECT run_id, parent FROM runs;

-- name: count_run_steps
SELECT COUNT(*) FROM tasks WHERE task_id >= ? AND task_id < ?;

-- name: count_attempts_of
SELECT COUNT(*) FROM attempts WHERE task_id IN ({ids});

-- name: count_errors_of
SELECT COUNT(*) FROM errors WHERE task_id IN ({ids});

-- name: count_logs_of
SELECT COUNT(*) FROM task_logs WHERE task_id IN ({ids});

-- name: delete_tasks
DELETE FROM tasks WHERE task_id IN ({ids});

-- name: record_pruned
INSERT INTO pruned_tasks (change_seq, task_id, created_at) VALUES ({tx_seq}, ?, ?);

-- name: mark_forgotten_prunes
-- Before the records of older prunes go: a mark (task id '', never a task's) under this prune's change number,
-- holding the newest change number among the records that go. A process that has read fewer changes than that
-- may have missed some of them, and checks what it holds against the table of tasks instead.
INSERT INTO pruned_tasks (change_seq, task_id, created_at)
SELECT {tx_seq}, '', MAX(change_seq) FROM pruned_tasks
WHERE change_seq < (SELECT MAX(change_seq) FROM pruned_tasks WHERE task_id != '')
HAVING COUNT(*) > 0;

-- name: forget_older_prunes
-- The ids of every prune but the latest go (that one keeps the change number from going back).
DELETE FROM pruned_tasks WHERE change_seq < (SELECT MAX(change_seq) FROM pruned_tasks WHERE task_id != '');

-- name: pruned_since
-- The tasks prunes deleted after a change number, and the marks of records let go since (task id '').
SELECT task_id, created_at FROM pruned_tasks WHERE change_seq > ? ORDER BY change_seq;

-- name: delete_attempts_of
DELETE FROM attempts WHERE task_id IN ({ids});

-- name: delete_errors_of
DELETE FROM errors WHERE task_id IN ({ids});

-- name: delete_logs_of
DELETE FROM task_logs WHERE task_id IN ({ids});

-- name: count_approvals_of_runs
SELECT COUNT(*) FROM approvals WHERE run_id IN ({ids});

-- name: delete_approvals_of_runs
DELETE FROM approvals WHERE run_id IN ({ids});

-- name: delete_runs
DELETE FROM runs WHERE run_id IN ({ids});

-- name: prunable_alerts
-- Alerts that ended before the horizon. A monitor's alert ends as it fires; a configured rule's (source
-- 'config') ends when its rule resolves, before the rule fires again: one followed by another of its rule
-- before the horizon goes, and the rule's latest goes if the rule is not firing and last changed before it.
-- Any other (still firing, or whose end may be after the horizon) stays.
SELECT alert_id FROM alerts WHERE at < :horizon AND (source <> 'config' OR alert_id IN (
    SELECT a.alert_id FROM alerts AS a
    JOIN (SELECT rule_id, MAX(CASE WHEN at < :horizon THEN at END) AS last_before, MAX(at) AS last_at
          FROM alerts WHERE source = 'config' GROUP BY rule_id) AS r ON r.rule_id = a.rule_id
    LEFT JOIN alert_states AS s ON s.rule = a.rule_id
    WHERE a.source = 'config' AND a.at < :horizon
      AND (a.at < r.last_before
           OR (r.last_before = r.last_at AND (s.rule IS NULL OR (s.firing = 0 AND s.changed_at < :horizon))))));

-- name: delete_alerts_of
DELETE FROM alerts WHERE alert_id IN ({ids});
