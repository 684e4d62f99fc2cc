-- What the shop knows of each order from upstream order events (order.paid, .shipped, .signed,
-- .closed) and from the contacts about it: each time is kept as first known, never moved, so
-- events that arrive twice or out of order change nothing they should not. The order clocks
-- (shared/tickets/clocks.py) read it.
CREATE TABLE orders (
    order_id     text        PRIMARY KEY,
    placed_at    timestamptz,
    paid_at      timestamptz,
    shipped_at   timestamptz,
    signed_at    timestamptz,
    closed_at    timestamptz,
    close_reason text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
