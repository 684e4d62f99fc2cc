"""Operations tooling behind the `ticketq` ops commands, usable without the CLI (tests, scripts)."""
