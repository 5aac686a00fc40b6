-- 0016: a task running inside its agent's budget holds a lease too (in_budget = 1), so every process sees how
-- much of the budget is in use, and what such tasks hold beyond their budget (once it ended) counts in the pool.

ALTER TABLE leases ADD COLUMN in_budget INTEGER NOT NULL DEFAULT 0;
