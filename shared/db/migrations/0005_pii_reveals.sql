-- Who saw a ticket's personal data unmasked, and when (SPEC §10): append-only.
CREATE TABLE pii_reveals (
    id        bigserial   PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    agent_id  text        NOT NULL,
    ticket_id text        NOT NULL REFERENCES tickets (id)
);
CREATE INDEX pii_reveals_ticket ON pii_reveals (ticket_id, at);

CREATE TRIGGER pii_reveals_append_only
    BEFORE UPDATE OR DELETE ON pii_reveals
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
