"""Finance (财务): refunds, compensation payouts, invoices (SPEC §7)."""
