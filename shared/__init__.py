"""ticketq's common code: messaging, database, models, configuration, logging."""
