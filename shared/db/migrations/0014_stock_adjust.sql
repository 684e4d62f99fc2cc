-- Staff adjust stock by hand (a count, breakage found on the shelf) with a recorded reason;
-- an adjustment names no task, so its reason is kept as text beside the movement.
ALTER TABLE stock_movements ADD COLUMN note text;
ALTER TABLE stock_movements ADD CONSTRAINT stock_adjustment_has_a_reason
    CHECK (reason <> 'adjust' OR (note IS NOT NULL AND note <> ''));
