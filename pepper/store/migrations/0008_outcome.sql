-- 0008: how a final task ended beyond its state ('skipped' or 'aborted') is a column of its own,
-- instead of a prefix of its reason text. Rows stored before are read back from that prefix once.

ALTER TABLE tasks ADD COLUMN outcome TEXT CHECK (outcome IN ('skipped', 'aborted'));

UPDATE tasks SET outcome = 'skipped' WHERE state = 'completed' AND reason LIKE 'skipped: %';
UPDATE tasks SET outcome = 'aborted' WHERE state = 'failed' AND reason LIKE 'aborted: %';
