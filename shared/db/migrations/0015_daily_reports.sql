-- The daily report (SPEC §9): each shop day's report is kept as it was produced, for the whole
-- shop (role NULL) or one role; producing it again replaces it.
CREATE TABLE daily_reports (
    day          date        NOT NULL,
    role         text,
    generated_at timestamptz NOT NULL,
    body         jsonb       NOT NULL,
    UNIQUE NULLS NOT DISTINCT (day, role)
);

-- The report selects each figure's rows by time; without these it scans whole tables.
CREATE INDEX ticket_history_at ON ticket_history (at, action);
CREATE INDEX tickets_opened_at ON tickets (opened_at);
