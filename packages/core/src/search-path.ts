/**
 * The search path of walflow's own sessions: PostgreSQL's catalog, and nothing an application role may create in.
 * walflow names its own objects with their schema; with `public` on the path, a function there that matches an
 * argument type more exactly than the built-in would take a call in walflow's session, with walflow's privileges.
 */
export const WALFLOW_SEARCH_PATH = 'pg_catalog, pg_temp';
