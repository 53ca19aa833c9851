"""Prompt messages and tools: what a caller sends to an LLM (the seed's `message_entities`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar


class PromptMessageRole(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"
    DEVELOPER = "developer"


class PromptMessageContentType(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    DOCUMENT = "document"


class ImageDetail(StrEnum):
    LOW = "low"
    HIGH = "high"


@dataclass(slots=True)
class TextPromptMessageContent:
    data: str
    type: ClassVar[PromptMessageContentType] = PromptMessageContentType.TEXT


@dataclass(slots=True, kw_only=True)
class MultiModalPromptMessageContent:
    """An image, audio clip, video or document, inline as base64 or by URL."""

    type: PromptMessageContentType
    mime_type: str
    format: str = ""
    base64_data: str = ""
    url: str = ""
    filename: str = ""
    # Images only.
    detail: ImageDetail = ImageDetail.LOW

    @property
    def data(self) -> str:
        """The URL, or a `data:` URI built from the base64 bytes: what most upstreams take."""
        return self.url or f"data:{self.mime_type};base64,{self.base64_data}"


PromptMessageContent = TextPromptMessageContent | MultiModalPromptMessageContent


@dataclass(slots=True)
class ToolCallFunction:
    name: str
    # A JSON object encoded as a string, as every upstream sends it.
    arguments: str


@dataclass(slots=True)
class ToolCall:
    id: str
    function: ToolCallFunction
    type: str = "function"


@dataclass(slots=True)
class PromptMessageTool:
    name: str
    description: str
    # JSON Schema of the tool's arguments.
    parameters: dict[str, Any]


@dataclass(slots=True, kw_only=True)
class PromptMessage:
    """One message of a conversation. Use the role-specific subclasses, as the seed does."""

    role: PromptMessageRole
    content: str | list[PromptMessageContent] | None = None
    name: str | None = None

    def get_text_content(self) -> str:
        """The message's text: the string content, or its text parts joined."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.data for p in self.content if isinstance(p, TextPromptMessageContent))

    def is_empty(self) -> bool:
        return not self.content


@dataclass(slots=True, kw_only=True)
class SystemPromptMessage(PromptMessage):
    role: PromptMessageRole = PromptMessageRole.SYSTEM


@dataclass(slots=True, kw_only=True)
class DeveloperPromptMessage(PromptMessage):
    role: PromptMessageRole = PromptMessageRole.DEVELOPER


@dataclass(slots=True, kw_only=True)
class UserPromptMessage(PromptMessage):
    role: PromptMessageRole = PromptMessageRole.USER


@dataclass(slots=True, kw_only=True)
class AssistantPromptMessage(PromptMessage):
    role: PromptMessageRole = PromptMessageRole.ASSISTANT
    tool_calls: list[ToolCall] = field(default_factory=list)
    # Provider state the caller sends back unchanged on the next turn (e.g. signed thinking).
    opaque_body: dict[str, Any] | None = None

    def is_empty(self) -> bool:
        # Unlike the seed's SDK, a message that only carries tool calls is not empty.
        return not self.content and not self.tool_calls


@dataclass(slots=True, kw_only=True)
class ToolPromptMessage(PromptMessage):
    role: PromptMessageRole = PromptMessageRole.TOOL
    tool_call_id: str


PROMPT_MESSAGE_CLASSES: dict[PromptMessageRole, type[PromptMessage]] = {
    PromptMessageRole.SYSTEM: SystemPromptMessage,
    PromptMessageRole.DEVELOPER: DeveloperPromptMessage,
    PromptMessageRole.USER: UserPromptMessage,
    PromptMessageRole.ASSISTANT: AssistantPromptMessage,
    PromptMessageRole.TOOL: ToolPromptMessage,
}
