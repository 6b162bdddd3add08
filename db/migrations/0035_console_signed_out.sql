-- Console sessions live in signed cookies, so signing out used to clear the browser's cookie only: a copy of it
-- kept working until it expired (12 h). A session signed out is now listed here until then, and refused.
CREATE TABLE walflow.console_signed_out (
  session_id text PRIMARY KEY,
  expires_at timestamptz NOT NULL
);
