"""Mail: a transactional outbox written in the caller's transaction, and the worker that
delivers it (SMTP, or the log when no SMTP server is configured)."""
