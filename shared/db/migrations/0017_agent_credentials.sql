-- Agents who sign in (issue 12): a password hash per agent, short-lived sessions kept by the
-- hash of their token only, and the failed sign-ins that rate-limit guessing (every replica
-- counts the same rows). An agent removed from the roster takes their password and sessions.
CREATE TABLE agent_credentials (
    agent_id      text        PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    password_hash text        NOT NULL,  -- argon2id, in its own encoded form
    set_at        timestamptz NOT NULL
);

CREATE TABLE agent_sessions (
    token_hash text        PRIMARY KEY,  -- sha-256 of the token, hex; the token is never kept
    agent_id   text        NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    roles      text[]      NOT NULL,     -- at sign-in, for display: commands read the roster
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked    boolean     NOT NULL DEFAULT false,
    revoked_at timestamptz
);
CREATE INDEX agent_sessions_agent ON agent_sessions (agent_id) WHERE NOT revoked;

-- No foreign key: guesses at ids nobody has are limited too.
CREATE TABLE sign_in_failures (
    agent_id text        NOT NULL,
    at       timestamptz NOT NULL
);
CREATE INDEX sign_in_failures_agent_at ON sign_in_failures (agent_id, at);
