// Plain values -> request messages, and chunks -> one answer; no server needed.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { create } from "@bufbuild/protobuf";

import {
  ImageDetail,
  LLMResultChunkSchema,
  ModelType,
  PromptMessageRole,
  StreamAccumulator,
  assistantMessage,
  floatValue,
  intValue,
  toModelParameters,
  toModelType,
  toPromptMessages,
  toTools,
  toolMessage,
  userMessage,
} from "../src/index.js";

describe("model parameters", () => {
  it("map each JavaScript type to its ParameterValue field", () => {
    const values = toModelParameters({
      temperature: 0.2,
      top_p: 1,
      max_tokens: 100,
      big: 2n ** 60n,
      stream: true,
      format: "json",
      forced: floatValue(3),
      skipped: undefined as never,
    });
    assert.deepEqual(values.temperature?.kind, { case: "floatValue", value: 0.2 });
    // Whole numbers go as int_value; the server accepts int_value for float rules.
    assert.deepEqual(values.top_p?.kind, { case: "intValue", value: 1n });
    assert.deepEqual(values.max_tokens?.kind, { case: "intValue", value: 100n });
    assert.deepEqual(values.big?.kind, { case: "intValue", value: 2n ** 60n });
    assert.deepEqual(values.stream?.kind, { case: "boolValue", value: true });
    assert.deepEqual(values.format?.kind, { case: "stringValue", value: "json" });
    assert.deepEqual(values.forced?.kind, { case: "floatValue", value: 3 });
    assert.equal("skipped" in values, false);
  });

  it("send numbers beyond 2^53 and fractions as float_value", () => {
    assert.equal(toModelParameters({ x: 2 ** 60 }).x?.kind.case, "floatValue");
    assert.equal(toModelParameters({ x: -0.5 }).x?.kind.case, "floatValue");
  });

  it("refuse values no field can hold", () => {
    assert.throws(
      () => toModelParameters({ stop: ["a"] as never }),
      /model parameter "stop" must be/,
    );
    assert.throws(() => toModelParameters({ big: 2n ** 64n }), /does not fit in a 64-bit integer/);
    assert.throws(() => intValue(0.5), /not a safe integer/);
  });
});

describe("prompt messages", () => {
  it("take a string as one user message", () => {
    const [message, ...rest] = toPromptMessages("hi");
    assert.equal(rest.length, 0);
    assert.equal(message?.role, PromptMessageRole.USER);
    assert.equal(message?.content, "hi");
  });

  it("take roles by name, parts, tool calls and tool answers", () => {
    const messages = toPromptMessages([
      { role: "system", content: "Be brief." },
      {
        role: "user",
        content: [
          "What is on this picture?",
          {
            type: "image",
            url: "https://example.com/cat.png",
            mimeType: "image/png",
            detail: "high",
          },
          { type: "document", data: new Uint8Array([1, 2, 3]), mimeType: "application/pdf" },
        ],
      },
      {
        role: "assistant",
        toolCalls: [
          { id: "call_1", function: { name: "get_weather", arguments: { city: "Paris" } } },
        ],
        opaqueBody: { signature: "abc" },
      },
      { role: "tool", content: "18°C", toolCallId: "call_1", name: "get_weather" },
      { role: "developer", content: "x" },
    ]);
    assert.deepEqual(
      messages.map((m) => m.role),
      [
        PromptMessageRole.SYSTEM,
        PromptMessageRole.USER,
        PromptMessageRole.ASSISTANT,
        PromptMessageRole.TOOL,
        PromptMessageRole.DEVELOPER,
      ],
    );
    const parts = messages[1]?.contentParts ?? [];
    assert.deepEqual(parts[0]?.content, { case: "text", value: "What is on this picture?" });
    assert.equal(parts[1]?.content.case, "image");
    const image = parts[1]?.content.value;
    assert.ok(typeof image === "object");
    assert.deepEqual(image.source, { case: "url", value: "https://example.com/cat.png" });
    assert.equal(image.detail, ImageDetail.HIGH);
    const document = parts[2]?.content.value;
    assert.ok(typeof document === "object");
    assert.deepEqual(document.source, { case: "base64Data", value: "AQID" });
    const call = messages[2]?.toolCalls[0];
    assert.equal(call?.type, "function");
    assert.equal(call?.function?.arguments, '{"city":"Paris"}');
    assert.deepEqual(messages[2]?.opaqueBody, { signature: "abc" });
    assert.equal(messages[3]?.toolCallId, "call_1");
  });

  it("have builders that make the same messages", () => {
    assert.deepEqual(userMessage("hi"), toPromptMessages("hi")[0]);
    assert.equal(toolMessage("ok", { toolCallId: "c" }).toolCallId, "c");
    assert.equal(
      assistantMessage("", { toolCalls: [{ function: { name: "f" } }] }).toolCalls[0]?.function
        ?.name,
      "f",
    );
  });

  it("name the message, part or key at fault", () => {
    assert.throws(
      () => toPromptMessages([{ role: "user", contents: "hi" } as never]),
      /promptMessages\[0\]: unknown key\(s\) contents/,
    );
    assert.throws(
      () => toPromptMessages([{ content: "hi" } as never]),
      /promptMessages\[0\]: missing 'role'/,
    );
    assert.throws(
      () =>
        toPromptMessages([{ role: "user", content: [{ type: "image", mimeType: "image/png" }] }]),
      /promptMessages\[0\]\.content\[0\]: give exactly one of url, base64Data or data/,
    );
    assert.throws(
      () =>
        toPromptMessages([
          {
            role: "user",
            content: [
              { type: "audio", url: "https://x/a.mp3", mimeType: "audio/mpeg", detail: "low" },
            ],
          },
        ]),
      /'detail' applies to images only/,
    );
    assert.throws(
      () => toPromptMessages({ role: "user", content: "hi" } as never),
      /must be an array of messages/,
    );
  });
});

describe("tools and model types", () => {
  it("take a tool plainly or in the OpenAI shape", () => {
    const parameters = {
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
    };
    const [plain, openai] = toTools([
      { name: "get_weather", description: "Weather", parameters },
      { type: "function", function: { name: "get_weather", description: "Weather", parameters } },
    ]);
    assert.deepEqual(plain, openai);
    assert.deepEqual(plain?.parameters, parameters);
    assert.throws(
      () => toTools([{ name: "f", parameters: { bad: undefined } } as never]),
      /tools\[0\]\.parameters/,
    );
  });

  it("take model types by name", () => {
    assert.equal(toModelType("llm"), ModelType.LLM);
    assert.equal(toModelType("text-embedding"), ModelType.TEXT_EMBEDDING);
    assert.equal(toModelType("text_embedding"), ModelType.TEXT_EMBEDDING);
    assert.equal(toModelType(ModelType.RERANK), ModelType.RERANK);
    assert.throws(() => toModelType("chat" as never), /unknown model type "chat"/);
  });
});

describe("StreamAccumulator", () => {
  it("joins content and tool-call fragments by index, keeping the last usage and finish reason", () => {
    const accumulator = new StreamAccumulator();
    const chunks = [
      { delta: { index: 0, message: { content: "Hel" } } },
      {
        delta: {
          index: 1,
          message: {
            content: "lo",
            toolCalls: [{ index: 1, id: "b", type: "function", function: { name: "g" } }],
          },
        },
      },
      {
        delta: {
          index: 2,
          message: {
            toolCalls: [
              { index: 0, id: "a", type: "function", function: { name: "f", arguments: '{"x"' } },
            ],
          },
        },
      },
      {
        delta: { index: 3, message: { toolCalls: [{ index: 0, function: { arguments: ":1}" } }] } },
      },
      {
        model: "m",
        delta: { index: 4, message: {}, finishReason: "tool_calls", usage: { totalTokens: 5n } },
      },
    ];
    for (const chunk of chunks) accumulator.add(create(LLMResultChunkSchema, chunk));
    const result = accumulator.result();
    assert.equal(accumulator.chunkCount, 5);
    assert.equal(result.message?.content, "Hello");
    assert.equal(result.message?.role, PromptMessageRole.ASSISTANT);
    assert.deepEqual(
      result.message?.toolCalls.map((c) => [c.id, c.function?.name, c.function?.arguments]),
      [
        ["a", "f", '{"x":1}'],
        ["b", "g", ""],
      ],
    );
    assert.equal(result.finishReason, "tool_calls");
    assert.equal(result.usage?.totalTokens, 5n);
    assert.equal(result.model, "m");
  });
});
