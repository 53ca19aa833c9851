"""modelruntime: the gRPC contract (`modelruntime.v1`) and its Python client (`modelruntime.client`)."""
