"""The OpenAI provider through the real gRPC server and Python client, against the fake OpenAI
upstream of `tests/upstreams/fakes/openai_wire.py`."""
