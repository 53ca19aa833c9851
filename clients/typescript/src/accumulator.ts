// Streamed chunks -> one answer.

import { create } from "@bufbuild/protobuf";
import type { JsonObject } from "@bufbuild/protobuf";

import {
  LLMResultSchema,
  PromptMessageRole,
  type LLMResult,
  type LLMResultChunk,
  type LLMUsage,
} from "./gen/modelruntime/v1/llm_pb.js";

interface PartialToolCall {
  id: string;
  type: string;
  name: string;
  arguments: string[];
}

/**
 * Assembles streamed `LLMResultChunk`s into the `LLMResult` a unary `invokeLLM` would return.
 *
 * Content, reasoning and refusal pieces are joined in order; tool-call fragments are joined by
 * their `index`; the last `finishReason`, `usage`, `model` and `systemFingerprint` seen win. The
 * result's `message` is ready to append to the conversation.
 *
 * ```ts
 * const answer = new StreamAccumulator();
 * for await (const chunk of client.streamLLM(request)) {
 *   process.stdout.write(chunk.delta?.message?.content ?? "");
 *   answer.add(chunk);
 * }
 * const result = answer.result();
 * ```
 */
export class StreamAccumulator {
  #content: string[] = [];
  #reasoning: string[] = [];
  #refusal: string[] = [];
  #toolCalls = new Map<number, PartialToolCall>();
  #opaqueBody: JsonObject | undefined;
  #usage: LLMUsage | undefined;
  #finishReason = "";
  #model = "";
  #systemFingerprint = "";
  #chunks = 0;

  /** How many chunks were added. */
  get chunkCount(): number {
    return this.#chunks;
  }

  add(chunk: LLMResultChunk): void {
    this.#chunks += 1;
    if (chunk.model) this.#model = chunk.model;
    if (chunk.systemFingerprint) this.#systemFingerprint = chunk.systemFingerprint;
    const delta = chunk.delta;
    const message = delta?.message;
    if (message) {
      if (message.content) this.#content.push(message.content);
      if (message.reasoningContent) this.#reasoning.push(message.reasoningContent);
      if (message.refusal) this.#refusal.push(message.refusal);
      for (const fragment of message.toolCalls) {
        let call = this.#toolCalls.get(fragment.index);
        if (call === undefined) {
          call = { id: "", type: "", name: "", arguments: [] };
          this.#toolCalls.set(fragment.index, call);
        }
        call.id ||= fragment.id;
        call.type ||= fragment.type;
        call.name ||= fragment.function?.name ?? "";
        if (fragment.function?.arguments) call.arguments.push(fragment.function.arguments);
      }
      if (message.opaqueBody !== undefined) this.#opaqueBody = message.opaqueBody;
    }
    if (delta?.usage !== undefined) this.#usage = delta.usage;
    if (delta?.finishReason) this.#finishReason = delta.finishReason;
  }

  result(): LLMResult {
    const toolCalls = [...this.#toolCalls.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, call]) => ({
        id: call.id,
        type: call.type || "function",
        function: { name: call.name, arguments: call.arguments.join("") },
      }));
    return create(LLMResultSchema, {
      model: this.#model,
      message: {
        role: PromptMessageRole.ASSISTANT,
        content: this.#content.join(""),
        toolCalls,
        opaqueBody: this.#opaqueBody,
      },
      usage: this.#usage,
      systemFingerprint: this.#systemFingerprint,
      reasoningContent: this.#reasoning.join(""),
      refusal: this.#refusal.join(""),
      finishReason: this.#finishReason,
    });
  }
}

/** Reads a stream to its end and returns the whole answer (see `StreamAccumulator`). */
export async function collect(chunks: AsyncIterable<LLMResultChunk>): Promise<LLMResult> {
  const accumulator = new StreamAccumulator();
  for await (const chunk of chunks) accumulator.add(chunk);
  return accumulator.result();
}
