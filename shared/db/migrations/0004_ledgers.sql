-- Warehouse and finance ledgers (issue 5, SPEC §7, §10). The service checks every rule first to
-- answer with a clear reason; these constraints hold the same rules if code ever forgets one.
-- One row per handoff (UNIQUE handoff_id): never a second refund, payout or shipment per task.
-- Ledger rows are append-only, except the running totals and the stock levels they move.

-- --- Finance ---------------------------------------------------------------------------------

-- What was paid for an order (from the ticket's order at its first refund) and what was
-- refunded so far; the CHECK is the rule "total refunded never exceeds what was paid".
CREATE TABLE order_payments (
    order_id   text          PRIMARY KEY,
    paid       numeric(12,2) NOT NULL CHECK (paid >= 0),
    refunded   numeric(12,2) NOT NULL DEFAULT 0 CHECK (refunded >= 0),
    updated_at timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT refunded_within_paid CHECK (refunded <= paid)
);

CREATE TABLE refunds (
    id         bigserial     PRIMARY KEY,
    refund_id  text          NOT NULL UNIQUE,
    ticket_id  text          NOT NULL REFERENCES tickets (id),
    handoff_id text          NOT NULL UNIQUE,
    order_id   text          NOT NULL REFERENCES order_payments (order_id),
    amount     numeric(12,2) NOT NULL CHECK (amount > 0),
    reason     text          NOT NULL CHECK (reason <> ''),
    by_agent   text          NOT NULL,
    at         timestamptz   NOT NULL,
    message_id text          NOT NULL
);
CREATE INDEX refunds_ticket ON refunds (ticket_id);

-- Every refund adds to its order's total in the same transaction: the CHECK above refuses one
-- that would go past what was paid, whoever inserts it.
CREATE FUNCTION add_refund_to_total() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE order_payments SET refunded = refunded + NEW.amount, updated_at = now()
     WHERE order_id = NEW.order_id;
    RETURN NEW;
END $$;
CREATE TRIGGER refunds_total AFTER INSERT ON refunds
    FOR EACH ROW EXECUTE FUNCTION add_refund_to_total();
CREATE TRIGGER refunds_append_only BEFORE UPDATE OR DELETE ON refunds
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- A supervisor's approval of a compensation payout, per finance handoff (§7 Compensation).
CREATE TABLE payout_approvals (
    handoff_id  text          PRIMARY KEY,
    ticket_id   text          NOT NULL REFERENCES tickets (id),
    amount      numeric(12,2) NOT NULL CHECK (amount > 0),
    approved_by text          NOT NULL,
    at          timestamptz   NOT NULL,
    message_id  text          NOT NULL
);

-- One payout per approved compensation (one per handoff). Above the threshold (a setting,
-- which a CHECK cannot read: the service sets approval_required) the approval is on record.
CREATE TABLE payouts (
    id                bigserial     PRIMARY KEY,
    payout_id         text          NOT NULL UNIQUE,
    ticket_id         text          NOT NULL REFERENCES tickets (id),
    handoff_id        text          NOT NULL UNIQUE,
    order_id          text,
    amount            numeric(12,2) NOT NULL CHECK (amount > 0),
    reason            text          NOT NULL,
    approval_required boolean       NOT NULL,
    approval_handoff  text          REFERENCES payout_approvals (handoff_id),
    approved_amount   numeric(12,2),
    by_agent          text          NOT NULL,
    at                timestamptz   NOT NULL,
    message_id        text          NOT NULL,
    CONSTRAINT payout_approved
        CHECK (NOT approval_required OR (approval_handoff IS NOT NULL AND approved_amount IS NOT NULL)),
    CONSTRAINT payout_within_approval CHECK (approved_amount IS NULL OR amount <= approved_amount)
);
CREATE TRIGGER payouts_append_only BEFORE UPDATE OR DELETE ON payouts
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TABLE cashback_register (
    id          bigserial     PRIMARY KEY,
    ticket_id   text          NOT NULL REFERENCES tickets (id),
    handoff_id  text          NOT NULL UNIQUE,
    order_id    text,
    customer_id text          NOT NULL,
    amount      numeric(12,2) NOT NULL CHECK (amount > 0),
    note        text          NOT NULL DEFAULT '',
    by_agent    text          NOT NULL,
    at          timestamptz   NOT NULL,
    message_id  text          NOT NULL
);
CREATE TRIGGER cashback_append_only BEFORE UPDATE OR DELETE ON cashback_register
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Only after confirmed receipt (received_at NOT NULL), never above the order's amount.
CREATE TABLE invoices (
    id              bigserial     PRIMARY KEY,
    ticket_id       text          NOT NULL REFERENCES tickets (id),
    handoff_id      text          NOT NULL UNIQUE,
    order_id        text          NOT NULL,
    title           text          NOT NULL CHECK (title <> ''),
    amount          numeric(12,2) NOT NULL CHECK (amount > 0),
    quantity        integer       NOT NULL CHECK (quantity > 0),
    order_amount    numeric(12,2) NOT NULL,
    received_at     timestamptz   NOT NULL,
    einvoice_id     text,
    tracking_number text,
    by_agent        text          NOT NULL,
    at              timestamptz   NOT NULL,
    message_id      text          NOT NULL,
    CONSTRAINT invoice_within_order CHECK (amount <= order_amount),
    CONSTRAINT invoice_sent CHECK (einvoice_id IS NOT NULL OR tracking_number IS NOT NULL)
);
CREATE TRIGGER invoices_append_only BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- --- Warehouse -------------------------------------------------------------------------------

CREATE TABLE stock (
    sku        text        PRIMARY KEY,
    on_hand    integer     NOT NULL CONSTRAINT stock_not_negative CHECK (on_hand >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every change of a stock level, with the task that caused it; the level is their sum.
CREATE TABLE stock_movements (
    id         bigserial   PRIMARY KEY,
    sku        text        NOT NULL REFERENCES stock (sku),
    delta      integer     NOT NULL CHECK (delta <> 0),
    reason     text        NOT NULL
               CHECK (reason IN ('restock', 'ship', 'part', 'replacement', 'adjust')),
    ticket_id  text        REFERENCES tickets (id),
    handoff_id text,
    by_agent   text        NOT NULL,
    at         timestamptz NOT NULL,
    message_id text        NOT NULL,
    UNIQUE (handoff_id, sku, reason)
);
CREATE TRIGGER stock_movements_append_only BEFORE UPDATE OR DELETE ON stock_movements
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- One shipment per ship / reissue / replacement / reship task.
CREATE TABLE shipments (
    id              bigserial   PRIMARY KEY,
    ticket_id       text        NOT NULL REFERENCES tickets (id),
    handoff_id      text        NOT NULL UNIQUE,
    order_id        text,
    kind            text        NOT NULL CHECK (kind IN ('ship', 'reship', 'part', 'replacement')),
    carrier         text        NOT NULL CHECK (carrier <> ''),
    tracking_number text        NOT NULL CHECK (tracking_number <> ''),
    items           jsonb       NOT NULL DEFAULT '[]',
    by_agent        text        NOT NULL,
    at              timestamptz NOT NULL,
    message_id      text        NOT NULL
);
CREATE INDEX shipments_order ON shipments (order_id);
CREATE TRIGGER shipments_append_only BEFORE UPDATE OR DELETE ON shipments
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- A parcel being redirected or intercepted (a reship waits for `confirmed`).
CREATE TABLE interceptions (
    handoff_id text        PRIMARY KEY,
    ticket_id  text        NOT NULL REFERENCES tickets (id),
    mode       text        NOT NULL CHECK (mode IN ('redirect', 'intercept')),
    status     text        NOT NULL CHECK (status IN ('requested', 'confirmed')),
    note       text        NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL
);

-- A return on its way back: pick-up arranged, in transit, delivered, received and inspected.
CREATE TABLE returns (
    handoff_id      text        PRIMARY KEY,
    ticket_id       text        NOT NULL REFERENCES tickets (id),
    order_id        text,
    status          text        NOT NULL
                    CHECK (status IN ('pickup_arranged', 'in_transit', 'delivered', 'received')),
    carrier         text,
    tracking_number text,
    inspection      text,
    notes           text        NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL,
    CHECK (status <> 'received' OR inspection IS NOT NULL)
);
