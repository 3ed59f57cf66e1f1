"""Running Bookshelf in production: logging, metrics, health, rate limits, HTTP hardening."""
