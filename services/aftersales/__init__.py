"""After-sales (售后): complaints, returns, defects, logistics (SPEC §7)."""
