"""Wire formats that several providers speak, written once (see `openai_wire`)."""
