-- A claim took hundreds of milliseconds, and the workers figure fell from ~6,500 to ~800-2,000 runs/s, whenever
-- workflow_runs was analyzed mid-queue (autovacuum's ANALYZE, or by hand): with real statistics the planner
-- estimates the walk at millions (it costs the concurrency count per row), above jit_above_cost and the
-- inlining and optimization thresholds, and JIT-compiled ~57 functions on every claim. A claim reads a few
-- hundred rows; compiling never pays for itself.
ALTER FUNCTION walflow.claim_runs(text, integer, integer, text[], integer) SET jit = off;
