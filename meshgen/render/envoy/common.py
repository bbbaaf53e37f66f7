"""Small Envoy building blocks used by several resource kinds."""

from __future__ import annotations

from typing import Any

from meshgen.model.mesh import HeaderMatch, RateLimit, Timeout


def socket_address(address: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": address, "port_value": port}}


def envoy_timeout(timeout: Timeout) -> str:
    """A route timeout as Envoy takes it: 0s turns it off (no timeout is written out, not left to
    Envoy's implicit 15 s)."""
    return "0s" if timeout is None else timeout.envoy()


def fraction(percent: float) -> dict[str, Any]:
    """A FractionalPercent exact to a ten-thousandth of a percent."""
    return {"numerator": round(percent * 10_000), "denominator": "MILLION"}


def header_matcher(match: HeaderMatch) -> dict[str, Any]:
    if match.exact is not None:
        return {"name": match.name, "string_match": {"exact": match.exact}}
    if match.prefix is not None:
        return {"name": match.name, "string_match": {"prefix": match.prefix}}
    if match.regex is not None:
        return {"name": match.name, "string_match": {"safe_regex": {"regex": match.regex}}}
    return {"name": match.name, "present_match": match.present is not False}


def local_rate_limit(limit: RateLimit, stat_prefix: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        "stat_prefix": stat_prefix,
        "token_bucket": {
            "max_tokens": limit.burst,
            "tokens_per_fill": limit.requests,
            "fill_interval": limit.per.envoy(),
        },
        "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
        "filter_enforced": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
        "response_headers_to_add": [
            {
                "header": {"key": "x-meshgen-ratelimited", "value": stat_prefix},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            }
        ],
    }


def typed(name: str, type_url: str, **config: Any) -> dict[str, Any]:
    return {"name": name, "typed_config": {"@type": type_url, **config}}
