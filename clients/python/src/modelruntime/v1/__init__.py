"""Generated protobuf and gRPC stubs of the `modelruntime.v1` contract (see `make protos`)."""
