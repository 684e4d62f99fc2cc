"""The `ticketq` command."""
