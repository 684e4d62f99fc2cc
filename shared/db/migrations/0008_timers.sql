-- Durable timers (issue 10, SPEC §8): one row per (ticket, kind, generation). Armed and
-- cancelled in the transaction of the state change that causes them; fired by any replica,
-- which claims due rows with FOR UPDATE SKIP LOCKED and writes the effect in the same
-- transaction that marks the row fired. No foreign key to tickets: timers are armed in the
-- ticket's own transaction, and the ticket row is the caller's business.
CREATE TABLE timers (
    id         bigserial   PRIMARY KEY,
    ticket_id  text        NOT NULL CHECK (ticket_id <> ''),
    kind       text        NOT NULL CHECK (kind <> ''),
    generation integer     NOT NULL CHECK (generation >= 1),
    clock      text        NOT NULL CHECK (clock IN ('business', 'calendar')),
    due_at     timestamptz NOT NULL,
    -- When the loop may next try: due_at, pushed back only after a fire handler failed.
    fire_after timestamptz NOT NULL,
    state      text        NOT NULL DEFAULT 'pending'
                           CHECK (state IN ('pending', 'fired', 'cancelled')),
    armed_at   timestamptz NOT NULL,
    fired_at   timestamptz,
    attempts   integer     NOT NULL DEFAULT 0,
    last_error text,
    payload    jsonb       NOT NULL DEFAULT '{}',
    UNIQUE (ticket_id, kind, generation),
    CHECK ((state = 'fired') = (fired_at IS NOT NULL))
);
-- The loops' only query paths: the next due time, and the due rows in order.
CREATE INDEX timers_pending_due ON timers (fire_after) WHERE state = 'pending';
-- At most one live generation per ticket and kind.
CREATE UNIQUE INDEX timers_one_pending ON timers (ticket_id, kind) WHERE state = 'pending';

-- A service level missed (e.g. no response within 2 min): one row per timer firing at most.
CREATE TABLE breaches (
    id         bigserial   PRIMARY KEY,
    ticket_id  text        NOT NULL,
    agent_id   text,
    kind       text        NOT NULL CHECK (kind <> ''),
    due_at     timestamptz NOT NULL,
    at         timestamptz NOT NULL,
    timer_id   bigint      NOT NULL UNIQUE REFERENCES timers (id),
    generation integer     NOT NULL
);
CREATE INDEX breaches_ticket ON breaches (ticket_id, at);
CREATE INDEX breaches_agent ON breaches (agent_id, at);

-- A ticket escalated to a supervisor (null: nobody on shift yet, the next one to come on).
CREATE TABLE escalations (
    id          bigserial   PRIMARY KEY,
    ticket_id   text        NOT NULL,
    to_agent_id text,
    kind        text        NOT NULL CHECK (kind <> ''),
    reason      text        NOT NULL CHECK (reason <> ''),
    at          timestamptz NOT NULL,
    timer_id    bigint      NOT NULL UNIQUE REFERENCES timers (id),
    generation  integer     NOT NULL
);
CREATE INDEX escalations_ticket ON escalations (ticket_id, at);

CREATE TRIGGER breaches_append_only
    BEFORE UPDATE OR DELETE ON breaches
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER escalations_append_only
    BEFORE UPDATE OR DELETE ON escalations
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
