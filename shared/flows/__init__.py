"""The flow engine: each ticket kind's path as data (`model`), loaded and validated from YAML
(`load`), interpreted by the ticket aggregate (`shared.tickets.decide`, the Step command), shown
to people (`view`, `ticketq flows show`)."""
