"""Call with a deadline, and cancel a stream part way (asyncio client).

python deadline_and_cancel.py [ADDRESS]
"""

from __future__ import annotations

import asyncio
import sys

from modelruntime.client import AsyncModelRuntimeClient, InvokeTimeoutError

SLOW = {"reply": "a b c d e f g h i j", "chunk_delay_ms": 200}


async def main(address: str) -> None:
    async with AsyncModelRuntimeClient(address) as client:
        # A deadline: the stream ends with a typed timeout, after the chunks that made it.
        try:
            async for chunk in client.stream_llm(
                "fake", "fake-chat", {"api_key": "fake-key"}, "hi", SLOW, timeout=0.5
            ):
                print(chunk.delta.message.content, end="", flush=True)
        except InvokeTimeoutError as error:
            print(f"\n{error.reason} after the deadline")

        # Cancelling: leaving the loop cancels the call, and the server stops the upstream.
        received = 0
        async for _chunk in client.stream_llm(
            "fake", "fake-chat", {"api_key": "fake-key"}, "hi", {**SLOW, "chunk_delay_ms": 20}
        ):
            received += 1
            if received == 3:
                break
        print(f"cancelled after {received} chunks")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"))
