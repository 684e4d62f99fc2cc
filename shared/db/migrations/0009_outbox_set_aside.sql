-- The outbox relay retries a row the broker refused (nack: e.g. its queue is full) later, with
-- backoff, so the rows behind it are not starved; `attempts > 0` marks rows that failed.
ALTER TABLE outbox
    ADD COLUMN attempts   integer     NOT NULL DEFAULT 0,
    ADD COLUMN due_at     timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN last_error text;
CREATE INDEX outbox_due ON outbox (due_at, id);

-- Rows the broker can never deliver (no queue for the routing key, no such exchange) are moved
-- here with the reason, out of the relay's way; put one back with
-- INSERT INTO outbox (message_id, exchange, routing_key, type, ticket_id, body, headers)
-- SELECT message_id, exchange, routing_key, type, ticket_id, body, headers
-- FROM outbox_set_aside WHERE id = ...; once the queue exists.
CREATE TABLE outbox_set_aside (
    id           bigint      PRIMARY KEY,  -- its id in the outbox
    message_id   text        NOT NULL,
    exchange     text        NOT NULL,
    routing_key  text        NOT NULL,
    type         text        NOT NULL,
    ticket_id    text,
    body         bytea       NOT NULL,
    headers      jsonb       NOT NULL,
    created_at   timestamptz NOT NULL,
    set_aside_at timestamptz NOT NULL DEFAULT now(),
    reason       text        NOT NULL
);
