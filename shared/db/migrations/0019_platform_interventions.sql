-- The platform's interventions (小二介入) as the shop learned of them: each fact kept as first
-- known, so a re-published or out-of-order event (a ruling before its opening) changes nothing
-- it should not.
CREATE TABLE platform_interventions (
    intervention_id text PRIMARY KEY,
    order_id        text        NOT NULL,
    opened_at       timestamptz,
    evidence_due_at timestamptz,
    reason          text,
    ruled_at        timestamptz,
    in_favour_of    text CHECK (in_favour_of IN ('shop', 'customer')),
    note            text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX platform_interventions_order ON platform_interventions (order_id);
