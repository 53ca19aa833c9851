"""Tool calls written as text: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`.

Xinference streams a tool-using answer without tool-call deltas: the model's raw tool-call text
arrives as ordinary content, with finish reason `stop` (wire-protocol reference §6). Qwen-family
models (Qwen 2/2.5/3, QwQ) write Hermes-style tags, so their streams are read through
`TaggedToolCallParser`, which turns each tagged call into a tool-call delta as soon as its
closing tag arrives and passes every other piece of text on at once.

Only text that may be the start of a tag (a trailing `<`, `<tool`, ...) or that lies inside an
open tag is held back; a chunk whose text is all held is not sent, so a streamed tool call
costs the caller the chunks its tag spanned. A tag whose body is not a JSON call, and a tag
still open when the answer ends, are passed on as the text they were.
"""

from __future__ import annotations

import json
import uuid

from providers.sdk.entities.llm import LLMResultChunk, ToolCallDelta
from providers.sdk.entities.message import ToolCallFunction
from providers.sdk.protocols.openai_wire import ChatStreamParser, Dialect

OPEN = "<tool_call>"
CLOSE = "</tool_call>"


class TaggedToolCallParser(ChatStreamParser):
    """A chat stream parser that also reads Hermes-style tagged tool calls out of the text."""

    def __init__(self, model: str, dialect: Dialect) -> None:
        super().__init__(model, dialect)
        self._held = ""  # text that may open a tag, or the body of an open tag so far
        self._inside = False
        self._calls = 0

    def feed(self, data: str, event: str = "") -> LLMResultChunk | None:
        chunk = super().feed(data, event)
        if chunk is None:
            return None
        delta = chunk.delta
        message = delta.message
        if message.content or self._held:
            had_text = bool(message.content)
            message.content, calls = self._split(message.content)
            message.tool_calls.extend(calls)
            if delta.finish_reason:
                # The answer is over: an unfinished tag was text after all.
                message.content += self._leftover()
            if had_text and not (message.has_output() or delta.finish_reason or delta.usage):
                return None
        if self._calls and delta.finish_reason == "stop":
            delta.finish_reason = self.finish_reason = "tool_calls"
        return chunk

    def _split(self, text: str) -> tuple[str, list[ToolCallDelta]]:
        """The text to show now and the calls completed by `text`."""
        data = self._held + text
        self._held = ""
        shown: list[str] = []
        calls: list[ToolCallDelta] = []
        while data:
            if not self._inside:
                start = data.find(OPEN)
                if start < 0:
                    keep = _partial_tag(data)
                    shown.append(data[: len(data) - keep])
                    self._held = data[len(data) - keep :]
                    break
                shown.append(data[:start])
                data = data[start + len(OPEN) :]
                self._inside = True
            else:
                end = data.find(CLOSE)
                if end < 0:
                    self._held = data
                    break
                body, data = data[:end], data[end + len(CLOSE) :]
                self._inside = False
                call = self._call(body)
                if call is None:
                    shown.append(OPEN + body + CLOSE)
                else:
                    calls.append(call)
        return "".join(shown), calls

    def _call(self, body: str) -> ToolCallDelta | None:
        try:
            parsed = json.loads(body)
        except ValueError:
            return None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("name"), str):
            return None
        arguments = parsed.get("arguments", {})
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        call = ToolCallDelta(
            index=self._calls,
            id=f"call_{uuid.uuid4().hex}",
            type="function",
            function=ToolCallFunction(parsed["name"], arguments),
        )
        self._calls += 1
        return call

    def _leftover(self) -> str:
        text = (OPEN if self._inside else "") + self._held
        self._held, self._inside = "", False
        return text


def _partial_tag(text: str) -> int:
    """The length of the longest end of `text` that could be the start of an opening tag."""
    tail = text[-(len(OPEN) - 1) :]
    start = tail.find("<")
    while start >= 0:
        if OPEN.startswith(tail[start:]):
            return len(tail) - start
        start = tail.find("<", start + 1)
    return 0
