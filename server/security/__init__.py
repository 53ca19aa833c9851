"""Who may call the server and what a call may ask for.

    config.py            the `security:` and `limits:` sections of the server config
    auth.py              caller API keys (hashed) and the interceptor that checks them
    credential_sets.py   server-side credentials callers name instead of sending, with rotation
    limits.py            request limits and the caps on concurrent calls
    guard.py             the servicer's hook: one admission per RPC that applies all of it
    build.py             builds the above from the config and wires TLS into the server

This module imports nothing on purpose: `server.config` imports `server.security.config`, and
`build` imports `server.config`.
"""
