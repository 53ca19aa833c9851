"""The provider side of modelruntime: the provider SDK (`providers.sdk`) and the built-in providers.

Each built-in provider is a folder in Dify's model-plugin layout (`<name>/provider/<name>.yaml`,
`<name>/models/<type>/*.yaml`, `<name>/models/<type>/<type>.py`). Nothing here knows protobuf or
gRPC; the server converts at its edge.
"""
