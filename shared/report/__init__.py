"""The daily report for the team lead (SPEC §9): figures of one shop day computed in SQL.

`figures` defines each figure as one per-ticket SQL query (its CSV) that the headline aggregates,
`daily` builds, keeps and exports a report, `html` renders it with inline SVG charts, `cli` is
`ticketq report`.
"""
