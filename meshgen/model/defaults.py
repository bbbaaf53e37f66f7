"""Built-in defaults: what a catalog gets for every field it leaves out, all in one place.

These are stated in the README's catalog reference. Nothing else in meshgen invents a timeout,
a retry or a limit; Envoy's own implicit defaults (15 s route timeout, one retry when a policy
exists) never apply because every rendered route spells its values out.
"""

from __future__ import annotations

from typing import Any

BUILTIN: dict[str, Any] = {
    "timeout": "5s",
    "connect_timeout": "1s",
    "retries": {
        "attempts": 1,
        "on": ["connect-failure", "refused-stream", "reset", "5xx"],
        "status_codes": [],
        "per_try_timeout": None,
        "backoff": {"base": "25ms", "max": "250ms"},
        "methods": "idempotent",
        "another_host": True,
    },
    # gRPC reports failures in trailers with HTTP 200, so 5xx would never match.
    "grpc_retry_on": ["connect-failure", "refused-stream", "reset", "unavailable"],
    "circuit_breaker": {
        "max_connections": 1024,
        "max_pending_requests": 1024,
        "max_requests": 1024,
        "max_retries": 3,
        "consecutive_5xx": 5,
        "interval": "10s",
        "ejection_time": "30s",
        "max_ejection_percent": 10,
        # Envoy's own: no limit of requests per connection, panic mode below 50% healthy.
        "max_requests_per_connection": None,
        "panic_threshold": None,
    },
    "health_check": {"interval": "5s", "timeout": "1s", "unhealthy_threshold": 3, "healthy_threshold": 2},
}
