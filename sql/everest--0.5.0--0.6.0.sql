-- everest 0.5.0 -> 0.6.0: metrics for operators (README, "Metrics"; docs/operations.md).
--   * everest.stats: this database's counters (appends, reads, notifications, rejections by
--     SQLSTATE), the sessions holding the $all horizon, and on a standby how far it trails.
--   * everest.reset_stats(): zero this database's counters.
--   Nothing existing changes. Like every function and view of the store, the new ones are
--   granted to nobody: examples/sql/grants.sql grants them to the admin and monitor sets.
\echo Use "ALTER EXTENSION everest UPDATE TO '0.6.0'" to load this file. \quit

-- ---------------------------------------------------------------------------------------------
-- Metrics (0.6.0; README, "Metrics"; docs/operations.md): counters in shared memory for this
-- database since the server started or since reset_stats(). Not transactional, not dumped.
-- Readable by the admin set and the optional monitor set of examples/sql/grants.sql; reset by
-- the admin set only.
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION everest.stats_counters(
    OUT database name,
    OUT appends bigint, OUT events_appended bigint, OUT idempotent_retries bigint,
    OUT reads bigint, OUT events_read bigint, OUT notifications bigint,
    OUT ev001_conflicts bigint, OUT ev002_rejections bigint, OUT ev003_rejections bigint,
    OUT ev004_rejections bigint, OUT ev005_rejections bigint, OUT ev006_rejections bigint,
    OUT ev007_rejections bigint,
    OUT horizon_holders integer, OUT oldest_holder_seconds double precision,
    OUT standby_trail_events bigint, OUT standby_horizon_age_seconds double precision,
    OUT stats_reset timestamptz)
    RETURNS record
    AS 'MODULE_PATHNAME', 'everest_stats_counters' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.reset_stats() RETURNS void
    AS 'MODULE_PATHNAME', 'everest_reset_stats' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE VIEW everest.stats AS
    SELECT database, appends, events_appended, idempotent_retries, reads, events_read, notifications,
           ev001_conflicts, ev002_rejections, ev003_rejections, ev004_rejections, ev005_rejections,
           ev006_rejections, ev007_rejections, horizon_holders, oldest_holder_seconds,
           standby_trail_events, standby_horizon_age_seconds, stats_reset
      FROM everest.stats_counters();

REVOKE ALL ON everest.stats FROM PUBLIC;
REVOKE ALL ON FUNCTION everest.stats_counters(), everest.reset_stats() FROM PUBLIC;
