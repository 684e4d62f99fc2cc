-- The roster (SPEC §3): agents, their roles and shifts, and whether they are online.
CREATE TABLE agents (
    id         text        PRIMARY KEY,
    name       text        NOT NULL,
    roles      text[]      NOT NULL,
    shifts     text[]      NOT NULL,
    online     boolean     NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (cardinality(roles) > 0)
);

-- Round robin among equally loaded agents (§5.2): who got the last ticket of each role.
CREATE TABLE assignment_cursor (
    role          text PRIMARY KEY,
    last_agent_id text NOT NULL
);

-- The ticket aggregate as the domain sees it; the columns beside it are kept in step for queries.
ALTER TABLE tickets ADD COLUMN state jsonb;

-- Answers to commands, so that a re-sent command (same message id) gets the same answer.
CREATE TABLE replies (
    consumer   text        NOT NULL,
    message_id text        NOT NULL,
    body       bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
