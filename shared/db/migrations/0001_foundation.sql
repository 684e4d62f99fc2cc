-- Messaging: the inbox makes handling idempotent, the outbox makes publishing transactional.
CREATE TABLE inbox (
    consumer    text        NOT NULL,
    message_id  text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
CREATE INDEX inbox_received_at ON inbox (received_at);

CREATE TABLE outbox (
    id           bigserial   PRIMARY KEY,
    message_id   text        NOT NULL UNIQUE,
    exchange     text        NOT NULL,
    routing_key  text        NOT NULL,
    type         text        NOT NULL,
    ticket_id    text,
    body         bytea       NOT NULL,
    headers      jsonb       NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Tickets (SPEC §4).
CREATE SEQUENCE ticket_number;

CREATE TABLE tickets (
    id                 text        PRIMARY KEY,
    kind               text        NOT NULL,
    status             text        NOT NULL,
    channel            text        NOT NULL,
    priority           text        NOT NULL,
    source             text        NOT NULL,
    external_id        text        NOT NULL,
    customer_id        text        NOT NULL,
    customer           jsonb       NOT NULL,  -- holds personal data: mask before showing
    order_id           text,
    order_data         jsonb,
    subject            text        NOT NULL,
    body               text        NOT NULL,
    attachments        jsonb       NOT NULL DEFAULT '[]',
    owner_role         text        NOT NULL,
    owner_agent_id     text,
    first_handler_id   text,
    first_handler_role text,
    version            integer     NOT NULL DEFAULT 1,
    opened_at          timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, external_id)
);
-- An order has at most one unfinished ticket: later contacts are follow-ups to it (§4).
CREATE UNIQUE INDEX tickets_one_open_per_order ON tickets (order_id)
    WHERE order_id IS NOT NULL AND status <> 'closed';
CREATE INDEX tickets_owner ON tickets (owner_role, owner_agent_id) WHERE status <> 'closed';

-- Every contact, the opening one and follow-ups; (source, external_id) is the dedup key.
CREATE TABLE ticket_contacts (
    source       text        NOT NULL,
    external_id  text        NOT NULL,
    -- Deferred: intake claims the contact (the dedup key) before it writes the new ticket.
    ticket_id    text        NOT NULL REFERENCES tickets (id) DEFERRABLE INITIALLY DEFERRED,
    is_follow_up boolean     NOT NULL,
    channel      text        NOT NULL,
    subject      text        NOT NULL,
    body         text        NOT NULL,
    message_id   text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, external_id)
);
CREATE INDEX ticket_contacts_ticket ON ticket_contacts (ticket_id);

-- Append-only history (§4): who, when, what, why and the message that caused it.
CREATE TABLE ticket_history (
    id          bigserial   PRIMARY KEY,
    ticket_id   text        NOT NULL REFERENCES tickets (id),
    at          timestamptz NOT NULL,
    actor_id    text        NOT NULL,
    actor_name  text        NOT NULL,
    action      text        NOT NULL,
    detail      jsonb       NOT NULL DEFAULT '{}',
    reason      text,
    message_id  text        NOT NULL
);
CREATE INDEX ticket_history_ticket ON ticket_history (ticket_id, id);

-- Refuses any change to an append-only table (this one, and the ledgers and logs after it).
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER ticket_history_append_only
    BEFORE UPDATE OR DELETE ON ticket_history
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ticket_history_no_truncate
    BEFORE TRUNCATE ON ticket_history
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
