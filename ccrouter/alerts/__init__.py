"""Alerts: pure rules (`model`), the service that evaluates them and posts webhooks."""
