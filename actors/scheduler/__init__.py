"""Scheduled jobs: cron evaluation, exactly-once claims, batch fan-out and reports."""
