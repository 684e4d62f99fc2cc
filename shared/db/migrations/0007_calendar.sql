-- The shop calendar (SPEC §3, §8): every loaded version is kept; the current one is the newest.
-- `body` is the validated calendar (shared.calendar.load.calendar_body), read back through the
-- same checks.
CREATE TABLE calendar_versions (
    version    integer     GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    loaded_at  timestamptz NOT NULL DEFAULT now(),
    source     text        NOT NULL,
    body       jsonb       NOT NULL
);

-- The roster's own shift definitions (`shifts:` in a roster file), replaced by each roster load.
-- No rows: seed 000's shifts (day, half_day, night).
CREATE TABLE roster_shifts (
    name    text PRIMARY KEY,
    starts  time NOT NULL,
    ends    time NOT NULL,
    CHECK (starts < ends)
);
