"""One access-log field set and one tracing setup, shared by every listener of every sidecar."""

from __future__ import annotations

from typing import Any

from meshgen.model.mesh import AccessLog, Instance, Mesh, Tracing
from meshgen.render.envoy import names

# The unified access log: the same fields, in the same order, from every sidecar.
HTTP_LOG_FIELDS: dict[str, str] = {
    "start_time": "%START_TIME%",
    "direction": "",  # filled per listener
    "service": "",
    "instance": "",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "authority": "%REQ(:AUTHORITY)%",
    "protocol": "%PROTOCOL%",
    "status": "%RESPONSE_CODE%",
    "grpc_status": "%GRPC_STATUS%",
    "response_flags": "%RESPONSE_FLAGS%",
    # Why Envoy answered as it did; names the policy when authorization refused the call.
    "details": "%RESPONSE_CODE_DETAILS%",
    "duration_ms": "%DURATION%",
    "upstream_service_time_ms": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    "route": "%ROUTE_NAME%",
    "upstream_cluster": "%UPSTREAM_CLUSTER%",
    "upstream_host": "%UPSTREAM_HOST%",
    "attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
    "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%",
    "downstream_remote": "%DOWNSTREAM_REMOTE_ADDRESS%",
    "peer": "%DOWNSTREAM_PEER_URI_SAN%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "trace_id": "%TRACE_ID%",
    "user_agent": "%REQ(USER-AGENT)%",
}
TCP_LOG_FIELDS: dict[str, str] = {
    key: value
    for key, value in HTTP_LOG_FIELDS.items()
    if key
    in (
        "start_time",
        "direction",
        "service",
        "instance",
        "response_flags",
        "duration_ms",
        "upstream_cluster",
        "upstream_host",
        "bytes_received",
        "bytes_sent",
        "downstream_remote",
        "peer",
    )
}


def access_log(log: AccessLog, instance: Instance, direction: str, *, tcp: bool = False) -> list[dict[str, Any]]:
    fields = dict(TCP_LOG_FIELDS if tcp else HTTP_LOG_FIELDS)
    if tcp:
        fields["details"] = "%CONNECTION_TERMINATION_DETAILS%"
    fields.update(direction=direction, service=instance.service, instance=instance.id)
    if log.format == "json":
        log_format: dict[str, Any] = {"json_format": fields}
    else:
        line = " ".join(f"{key}={value or '-'}" for key, value in fields.items())
        log_format = {"text_format_source": {"inline_string": line + "\n"}}
    if log.path == "/dev/stdout":
        # Envoy's stdout logger writes to its own stdout; the file logger would reopen
        # /dev/stdout by path, which fails where stdout is a socket (systemd's journal).
        return [
            {
                "name": "envoy.access_loggers.stdout",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                    "log_format": log_format,
                },
            }
        ]
    return [
        {
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": log.path,
                "log_format": log_format,
            },
        }
    ]


def _provider(tracing: Tracing, instance: Instance) -> dict[str, Any]:
    if tracing.provider == "xray":
        # The X-Ray daemon listens on UDP next to the sidecar; no collector cluster is involved.
        return {
            "name": "envoy.tracers.xray",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.XRayConfig",
                "daemon_endpoint": {
                    "protocol": "UDP",
                    "address": tracing.collector_address,
                    "port_value": tracing.collector_port,
                },
                "segment_name": instance.service,
            },
        }
    if tracing.provider == "zipkin":
        return {
            "name": "envoy.tracers.zipkin",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig",
                "collector_cluster": names.TRACING_CLUSTER,
                "collector_endpoint": "/api/v2/spans",
                "collector_endpoint_version": "HTTP_JSON",
                "trace_id_128bit": True,
                # Separate client and server spans, so each sidecar hop is its own span.
                "shared_span_context": False,
            },
        }
    return {
        "name": "envoy.tracers.opentelemetry",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
            "http_service": {
                "http_uri": {
                    "uri": f"http://{tracing.collector_address}:{tracing.collector_port}/v1/traces",
                    "cluster": names.TRACING_CLUSTER,
                    "timeout": "1s",
                },
            },
            "service_name": instance.service,
        },
    }


def tracing_config(mesh: Mesh, instance: Instance) -> dict[str, Any] | None:
    if mesh.tracing is None:
        return None
    return {
        "random_sampling": {"value": mesh.tracing.sample_percent},
        "provider": _provider(mesh.tracing, instance),
    }
