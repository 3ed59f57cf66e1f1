"""Prometheus series of the mail outbox (scraped with the rest at ``/metrics``, or from
``bookshelf worker --metrics-port``)."""

from prometheus_client import Counter, Gauge

SENT = Counter("bookshelf_mail_sent", "Mail messages delivered.")
RETRIED = Counter("bookshelf_mail_retried", "Failed deliveries that will be retried.")
DEAD = Counter("bookshelf_mail_dead", "Messages given up on (attempts spent or refused).")
LEASE_LOST = Counter(
    "bookshelf_mail_lease_lost",
    "Outcomes not recorded: the worker's lease had expired and another worker had claimed "
    "the message.",
)
UNSENT = Gauge(
    "bookshelf_mail_outbox_unsent",
    "Messages queued and not yet delivered (pending or being sent).",
    multiprocess_mode="max",
)
DEAD_IN_OUTBOX = Gauge(
    "bookshelf_mail_outbox_dead",
    "Dead messages in the outbox (never silently dropped: look at them).",
    multiprocess_mode="max",
)
OLDEST_UNSENT_AGE = Gauge(
    "bookshelf_mail_oldest_unsent_age_seconds",
    "Age of the oldest message not yet delivered (0 when none).",
    multiprocess_mode="max",
)
