"""The gRPC transport of modelruntime: the servicer, proto <-> entity conversion, error -> status
mapping, configuration and the `modelruntime` command. It knows protobuf; `providers` does not."""
