"""Intake (受理): validate, dedup, classify and route new contacts (SPEC §4, §5.1)."""
