"""Stream a chat, printing tokens as they arrive, then the usage.

python stream_chat.py [ADDRESS]      # default 127.0.0.1:50051, a server from `make run`
"""

from __future__ import annotations

import sys

from modelruntime.client import ModelRuntimeClient, StreamAccumulator


def main(address: str) -> None:
    with ModelRuntimeClient(address) as client:
        answer = StreamAccumulator()
        for chunk in client.stream_llm(
            provider="fake",
            model="fake-chat",
            credentials={"api_key": "fake-key"},
            prompt_messages=[
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "What is the weather in Paris?"},
            ],
            model_parameters={
                "reply": "Let me check.",
                "tool_calls": '[{"name": "get_weather", "arguments": {"city": "Paris"}}]',
                "chunk_delay_ms": 30,
            },
            tools=[
                {
                    "name": "get_weather",
                    "description": "Current weather for a city",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                }
            ],
        ):
            print(chunk.delta.message.content, end="", flush=True)
            answer.add(chunk)
        result = answer.result()
        print()
        for call in result.message.tool_calls:
            print(f"tool call: {call.function.name}({call.function.arguments})")
        usage = result.usage
        print(
            f"finish: {result.finish_reason}; tokens: {usage.total_tokens}; "
            f"price: {usage.total_price} {usage.currency}"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051")
