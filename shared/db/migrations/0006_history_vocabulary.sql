-- One vocabulary for the history's action column: what happened, in the past tense
-- (shared/tickets/commands.py ACTIONS). Earlier rows said the command's class name
-- ("HandOff") or the operation's ("PickUp") next to intake's "opened".
-- History is append-only; this one correction of the spelling runs with its guard lifted
-- inside the migration's own transaction.
ALTER TABLE ticket_history DISABLE TRIGGER ticket_history_append_only;

UPDATE ticket_history SET action = CASE action
    WHEN 'Claim' THEN 'claimed'
    WHEN 'Assign' THEN 'assigned'
    WHEN 'Reply' THEN 'replied'
    WHEN 'HandOff' THEN 'handed_off'
    WHEN 'RecordResult' THEN 'result_recorded'
    WHEN 'Resolve' THEN 'resolved'
    WHEN 'Close' THEN 'closed'
    WHEN 'Escalate' THEN 'escalated'
    WHEN 'ReassignFirstHandler' THEN 'first_handler_reassigned'
    ELSE 'step_recorded'  -- PickUp, TrackReturn, Intercept, ApprovePayout: steps of a task
END
WHERE action NOT IN ('opened', 'follow_up_attached');

ALTER TABLE ticket_history ENABLE TRIGGER ticket_history_append_only;
