-- The health projection's rolling memory (projections/health_samples.py): the observation
-- windows of the last 24 hours, summed into 5-minute buckets and folded from HealthObserved,
-- so the health score's factors are rebuilt exactly from the log. Each bucket is a JSON array
-- [start, probes, failures, timed probes, Σ p95 * probes, max ms, restarts, OOM kills,
-- peak memory bytes, memory limit bytes].
ALTER TABLE health ADD COLUMN samples jsonb NOT NULL DEFAULT '[]';
