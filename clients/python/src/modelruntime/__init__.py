"""modelruntime: the gRPC contract (`modelruntime.v1`) and its client (`modelruntime.client`)."""
