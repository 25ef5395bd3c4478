"""Runs, webhook deliveries and everything recorded about an investigation."""
