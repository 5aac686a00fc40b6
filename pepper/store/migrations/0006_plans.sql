-- 0006: the timeline a run was predicted to follow, kept to compare with what happened.
ALTER TABLE runs ADD COLUMN plan TEXT;
