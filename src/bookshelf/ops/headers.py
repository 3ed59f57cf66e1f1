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
# The web app's pages (``bookshelf.web``): its own style sheet and images, forms that post to
# itself only, no script at all, and no inline style or script of any kind.
PAGE_CSP = (
    b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    b"base-uri 'none'; frame-ancestors 'none'"
)
# What is not a page: the API, its schema, the probes and the metrics (the docs have their own
# headers). Every other path is the web app's, its 404s included.
NOT_PAGE_PREFIXES = ("/api/", "/openapi.json", "/health/", "/metrics")
_NO_SNIFF = (b"x-content-type-options", b"nosniff")
_NO_FRAMES = (b"x-frame-options", b"DENY")
_OWN_WINDOW = (b"cross-origin-opener-policy", b"same-origin")
COMMON_SECURITY_HEADERS = [
    _NO_SNIFF,
    (b"referrer-policy", b"no-referrer"),
    _NO_FRAMES,
    _OWN_WINDOW,
]
# A page's form posts must carry their Origin: under ``no-referrer`` a browser sends
# ``Origin: null`` with them (Fetch, "serializing a request origin"). ``same-origin`` still
# sends nothing to other sites (a link's token in a page's address stays here).
PAGE_SECURITY_HEADERS = [
    _NO_SNIFF,
    (b"referrer-policy", b"same-origin"),
    _NO_FRAMES,
    _OWN_WINDOW,
    (b"content-security-policy", PAGE_CSP),
]
HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
