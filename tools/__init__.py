"""Developer tools run from ``dev.py``; never installed with the service."""
