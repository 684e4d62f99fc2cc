"""The five workers, one package each; `ticketq worker NAME` runs one."""
