-- First response (SPEC §8: within 30 s of assignment, measured per ticket and agent): one row
-- per ticket, written when its first handler takes it. `met` is settled by whichever comes
-- first, the first reply (true) or the 30 s timer firing (false); a reply after the timer
-- still fills in `replied_at`. `business_seconds`: staffed time from assignment to reply.
CREATE TABLE first_responses (
    ticket_id        text        PRIMARY KEY REFERENCES tickets (id),
    agent_id         text,
    assigned_at      timestamptz NOT NULL,
    due_at           timestamptz NOT NULL,
    replied_at       timestamptz,
    business_seconds numeric(12, 3),
    met              boolean,
    CHECK ((replied_at IS NULL) = (business_seconds IS NULL))
);
CREATE INDEX first_responses_agent ON first_responses (agent_id, assigned_at);
