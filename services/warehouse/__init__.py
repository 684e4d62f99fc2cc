"""Warehouse (仓库): ships, intercepts, receives returns, reissues parts (SPEC §7)."""
