-- Ops audit log of `ticketq dlq replay` and `ticketq dlq discard` (SPEC §9).
--
-- One row per run, written in two steps: `started` (who, what, which filter) before the tool
-- moves anything, then `completed` or `failed` with the counts. In between, the ids of the
-- messages acted on are appended batch by batch, each batch BEFORE the broker removes those
-- messages from the dead-letter queue. A row still `started` after its run ended was
-- interrupted (crash, SIGKILL, lost connection): its message_ids are the messages the tool had
-- published (replay) or was removing (discard); re-running the same command is safe, since a
-- replayed copy keeps its message id and the consumers' inbox makes a second copy a no-op.
CREATE TABLE dlq_audit (
    id           bigserial   PRIMARY KEY,
    action       text        NOT NULL CHECK (action IN ('replay', 'discard')),
    actor        text        NOT NULL,
    status       text        NOT NULL DEFAULT 'started'
                             CHECK (status IN ('started', 'completed', 'failed')),
    filter       jsonb       NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    matched      integer     NOT NULL DEFAULT 0,  -- messages the filter selected
    succeeded    integer     NOT NULL DEFAULT 0,  -- replayed (confirmed, then acked) or discarded
    failed       integer     NOT NULL DEFAULT 0,  -- selected but refused by the broker; left in place
    message_ids  text[]      NOT NULL DEFAULT '{}',
    error        text,
    host         text        NOT NULL,
    pid          integer     NOT NULL
);
CREATE INDEX dlq_audit_started_at ON dlq_audit (started_at DESC, id DESC);

-- The log is append-only once a run has finished: a `started` row may be completed or failed
-- (the same run closing it), nothing else may change, and no row may be deleted.
CREATE FUNCTION dlq_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.status = 'started' AND NEW.id = OLD.id AND NEW.action = OLD.action
                AND NEW.actor = OLD.actor AND NEW.filter = OLD.filter
                AND NEW.started_at = OLD.started_at AND NEW.host = OLD.host
                AND NEW.pid = OLD.pid THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'dlq_audit is an audit log: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER dlq_audit_final
    BEFORE UPDATE OR DELETE ON dlq_audit
    FOR EACH ROW EXECUTE FUNCTION dlq_audit_guard();
CREATE TRIGGER dlq_audit_no_truncate
    BEFORE TRUNCATE ON dlq_audit
    FOR EACH STATEMENT EXECUTE FUNCTION dlq_audit_guard();
