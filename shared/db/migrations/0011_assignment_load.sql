-- Auto-assignment (§5.2) reads every agent's load, the open tickets they own in the role, under
-- the role's advisory lock. Counting them from `tickets` scanned every open ticket of the role
-- (a sequential scan: 100 ms at 50k open tickets, for each assignment, all the while holding
-- the lock); a partial index would only make that an index scan over the same 50k rows.
-- So the load is kept as a counter per (role, agent), moved by a trigger on `tickets`: every
-- change of owner or status (assign, claim, handoff away and back, escalate, resolve, close,
-- reopen, reassign; insert and delete too) moves it in the same transaction, whichever code
-- makes the change, and the assigner reads one row per agent of the role. It counts exactly
-- what the old query did: owner_agent_id set, status neither resolved nor closed, per owner_role.
CREATE TABLE agent_load (
    role         text    NOT NULL,
    agent_id     text    NOT NULL,
    open_tickets integer NOT NULL CHECK (open_tickets >= 0),  -- below 0: a change was missed
    PRIMARY KEY (role, agent_id)
) WITH (fillfactor = 50);  -- a few rows updated all day: room for in-page (HOT) updates

CREATE FUNCTION agent_load_follow() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_role  text;
    was_agent text;
    now_role  text;
    now_agent text;
    k         record;
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.owner_agent_id IS NOT NULL
       AND OLD.status NOT IN ('resolved', 'closed') THEN
        was_role := OLD.owner_role;
        was_agent := OLD.owner_agent_id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.owner_agent_id IS NOT NULL
       AND NEW.status NOT IN ('resolved', 'closed') THEN
        now_role := NEW.owner_role;
        now_agent := NEW.owner_agent_id;
    END IF;
    IF was_role IS NOT DISTINCT FROM now_role AND was_agent IS NOT DISTINCT FROM now_agent THEN
        RETURN NULL;  -- the same load before and after: most updates (a reply, a step)
    END IF;
    -- Both rows are changed in key order, so two moves in opposite directions (A to B and
    -- B to A at once) cannot deadlock. The row taken from exists: the ticket was counted in it.
    FOR k IN SELECT * FROM (VALUES (was_role, was_agent, -1), (now_role, now_agent, 1))
                        AS v (role, agent_id, delta)
              WHERE v.agent_id IS NOT NULL ORDER BY v.role, v.agent_id LOOP
        IF k.delta > 0 THEN
            INSERT INTO agent_load AS l (role, agent_id, open_tickets)
            VALUES (k.role, k.agent_id, 1)
            ON CONFLICT (role, agent_id) DO UPDATE SET open_tickets = l.open_tickets + 1;
        ELSE
            UPDATE agent_load SET open_tickets = open_tickets - 1
             WHERE role = k.role AND agent_id = k.agent_id;
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

-- Created before the backfill: it waits for writers in flight and holds theirs off until this
-- migration commits, so no change falls between the count and the trigger.
CREATE TRIGGER tickets_agent_load
    AFTER INSERT OR DELETE OR UPDATE OF owner_role, owner_agent_id, status ON tickets
    FOR EACH ROW EXECUTE FUNCTION agent_load_follow();

INSERT INTO agent_load (role, agent_id, open_tickets)
SELECT owner_role, owner_agent_id, count(*)
  FROM tickets
 WHERE owner_agent_id IS NOT NULL AND status NOT IN ('resolved', 'closed')
 GROUP BY owner_role, owner_agent_id;

-- The sweep for tickets that waited (off hours, nobody online) takes a role's oldest queued
-- tickets; partial on status, so only queued tickets are in it and it stays small.
CREATE INDEX tickets_queued ON tickets (owner_role, opened_at) WHERE status = 'queued';
