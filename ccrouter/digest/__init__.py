"""Scheduled KPI reports mailed from the daemon (`reports.schedules`, `ccrouter report send`)."""
