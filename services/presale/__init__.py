"""Pre-sale (售前): inquiries and unpaid-order reminders (SPEC §6)."""
