"""Operating the server: per-RPC hooks (logs, metrics, traces, the drain's record of calls in
flight), Prometheus metrics, OpenTelemetry tracing and the log formats."""
