"""Notifications: the transactional outbox, channels (SMTP, webhook, Slack, Teams) and the
dispatcher the worker runs."""
