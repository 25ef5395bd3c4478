"""IncidentFox shared package: settings, database plumbing, cross-process contracts and the CLI."""

__version__ = "0.1.0"
