"""Security header values, shared by the middleware that adds them and by the 500 handler
(which answers from outside that middleware)."""

# The API serves JSON only: nothing may be loaded or framed from its responses.
API_CSP = b"default-src 'none'; frame-ancestors 'none'"
# Swagger UI and ReDoc: our own scripts and styles (plus the inline bootstrap each page has),
# ReDoc's blob: worker, images from data: URLs.
DOCS_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'"
)
DOCS_PREFIXES = ("/docs", "/redoc")
COMMON_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
