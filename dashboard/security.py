"""The security headers of every response of the dashboard's server."""

from __future__ import annotations

from flask import Flask, Response, request

from dashboard import PREFIX

# Dash keeps inline scripts out of the page except its renderer start-up, which is allowed by
# hash below; Plotly and AG Grid inject <style> elements, hence 'unsafe-inline' for styles
# only. No 'unsafe-eval': the browser tests check that nothing the pages do needs it.
CSP = ("default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def add_security_headers(server: Flask, script_hashes: list[str]) -> None:
    """Set the headers above (and the content security policy allowing `script_hashes`) on
    every response that does not set them itself; no-store for the login form and the
    dashboard."""
    policy = CSP.format(hashes=" ".join(script_hashes))

    @server.after_request
    def headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Content-Security-Policy", policy)
        if request.path == "/login" or request.path.startswith(PREFIX):
            # pages and data are per user: never keep them in shared caches
            response.headers.setdefault("Cache-Control", "no-store")
        return response
