// The client against the real server (the built-in `fake` provider), over loopback gRPC.

import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, describe, it } from "node:test";

import {
  CallCancelledError,
  InvalidParameterError,
  InvalidRequestError,
  InvokeAuthorizationError,
  InvokeConnectionError,
  InvokeRateLimitError,
  InvokeTimeoutError,
  ModelNotFoundError,
  ModelRuntimeClient,
  ModelRuntimeError,
  ModelType,
  ProviderNotFoundError,
  StreamAccumulator,
  collect,
  type LLMInput,
  type LLMResultChunk,
} from "../src/index.js";
import { TestServer, sleep } from "./server.js";

const CREDENTIALS = { api_key: "fake-key" };
const CHAT = { provider: "fake", model: "fake-chat", credentials: CREDENTIALS } as const;
const CALL_TIMEOUT_MS = 10_000;
const TEST = { timeout: 20_000 };
const WEATHER_CALL = [{ name: "get_weather", arguments: { city: "Paris" } }];
// 40 words at 100 ms each: a stream that would run for 4 s unless cancelled.
const SLOW_REPLY = Array.from({ length: 40 }, (_, i) => `w${i}`).join(" ");

function chat(modelParameters: LLMInput["modelParameters"], prompt = "hi"): LLMInput {
  return { ...CHAT, promptMessages: [{ role: "user", content: prompt }], modelParameters };
}

async function expectError<T extends ModelRuntimeError>(
  promise: Promise<unknown>,
  type: new (...args: never[]) => T,
): Promise<T> {
  const error: unknown = await promise.then(
    () => assert.fail(`expected ${type.name}, the call succeeded`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`);
  return error;
}

describe("ModelRuntimeClient against the real server", () => {
  let server: TestServer;
  let client: ModelRuntimeClient;

  before(async () => {
    server = await TestServer.start();
    client = new ModelRuntimeClient(server.address, { defaultTimeoutMs: CALL_TIMEOUT_MS });
  });

  after(async () => {
    client?.close();
    const code = await server?.stop();
    assert.equal(code, 0, "the server exits 0 on SIGTERM");
  });

  describe("streaming", () => {
    it(
      "streams a chat with tool calls: fragments by index, then finish reason and usage",
      TEST,
      async () => {
        const chunks: LLMResultChunk[] = [];
        const request = chat({ reply: "Let me check.", tool_calls: JSON.stringify(WEATHER_CALL) });
        for await (const chunk of client.streamLLM({
          ...request,
          tools: [
            {
              name: "get_weather",
              description: "The weather in a city",
              parameters: { type: "object", properties: { city: { type: "string" } } },
            },
          ],
        })) {
          chunks.push(chunk);
        }

        assert.deepEqual(
          chunks.map((c) => c.delta?.index),
          chunks.map((_, i) => i),
        );
        const fragments = chunks.flatMap((c) => c.delta?.message?.toolCalls ?? []);
        assert.ok(fragments.length >= 2, "the arguments arrive in several fragments");
        assert.equal(fragments[0]?.id, "call_fake_0");
        assert.equal(fragments[0]?.type, "function");
        assert.equal(fragments[0]?.function?.name, "get_weather");
        assert.ok(
          fragments.slice(1).every((f) => f.index === 0 && f.id === "" && f.function?.name === ""),
        );

        const last = chunks.at(-1);
        assert.equal(last?.delta?.finishReason, "tool_calls");
        assert.ok(last?.delta?.usage, "the last chunk carries usage");
        assert.ok(last.delta.usage.totalTokens > 0n);
        assert.equal(last.delta.usage.currency, "USD");
        assert.ok(
          chunks
            .slice(0, -1)
            .every((c) => c.delta?.usage === undefined && c.delta?.finishReason === ""),
        );

        const accumulator = new StreamAccumulator();
        chunks.forEach((chunk) => accumulator.add(chunk));
        const result = accumulator.result();
        assert.equal(result.message?.content, "Let me check.");
        assert.equal(result.message?.toolCalls.length, 1);
        const call = result.message?.toolCalls[0];
        assert.equal(call?.id, "call_fake_0");
        assert.equal(call?.function?.name, "get_weather");
        assert.deepEqual(JSON.parse(call?.function?.arguments ?? ""), { city: "Paris" });
        assert.equal(result.finishReason, "tool_calls");
      },
    );

    it(
      "yields one chunk per word, each word keeping its trailing space, then the closing chunk",
      TEST,
      async () => {
        const reply = "one two three four five six seven";
        const words = reply.split(" ");
        const chunks: LLMResultChunk[] = [];
        for await (const chunk of client.streamLLM(chat({ reply }))) chunks.push(chunk);

        const content = chunks.filter((c) => c.delta?.message?.content);
        assert.equal(content.length, words.length, "as many content chunks as words");
        assert.deepEqual(
          content.map((c) => c.delta?.message?.content),
          words.map((w, i) => (i < words.length - 1 ? `${w} ` : w)),
        );
        // The stream is the words' chunks and the closing chunk with finish reason and usage.
        assert.equal(chunks.length, words.length + 1);
        assert.equal(chunks.at(-1)?.delta?.finishReason, "stop");
        assert.ok(chunks.at(-1)?.delta?.usage);
        assert.equal(chunks.at(-1)?.delta?.usage?.completionTokens, BigInt(words.length));
      },
    );

    it("collects a stream into the answer invokeLLM gives", TEST, async () => {
      const request = chat({ reply: "alpha beta", tool_calls: JSON.stringify(WEATHER_CALL) });
      const streamed = await collect(client.streamLLM(request));
      const unary = await client.invokeLLM(request);
      assert.equal(streamed.message?.content, unary.message?.content);
      assert.equal(
        streamed.message?.toolCalls[0]?.function?.arguments,
        unary.message?.toolCalls[0]?.function?.arguments,
      );
      assert.equal(streamed.finishReason, unary.finishReason);
      assert.equal(streamed.usage?.completionTokens, unary.usage?.completionTokens);
    });

    it("delivers chunks as they are produced, not at the end", TEST, async () => {
      const started = Date.now();
      const arrivals: number[] = [];
      for await (const chunk of client.streamLLM(
        chat({ reply: "a b c d e", chunk_delay_ms: 100 }),
      )) {
        if (chunk.delta?.message?.content) arrivals.push(Date.now() - started);
      }
      assert.equal(arrivals.length, 5);
      assert.ok(arrivals[0]! < 350, `first chunk after ${arrivals[0]} ms`);
      assert.ok(
        arrivals[4]! - arrivals[0]! >= 300,
        `chunks spread over ${arrivals[4]! - arrivals[0]!} ms`,
      );
    });
  });

  describe("errors", () => {
    it(
      "throws a typed rate-limit error mid-stream, after the chunks sent before it",
      TEST,
      async () => {
        const received: string[] = [];
        const stream = client.streamLLM(
          chat({
            reply: "one two three four",
            fail_with: "rate_limit",
            fail_after_chunks: 2,
            retry_after: 2.5,
          }),
        );
        const error = await expectError(
          (async () => {
            for await (const chunk of stream) received.push(chunk.delta?.message?.content ?? "");
          })(),
          InvokeRateLimitError,
        );

        assert.deepEqual(received, ["one ", "two "]);
        assert.equal(error.reason, "INVOKE_RATE_LIMIT");
        assert.equal(error.code, "RESOURCE_EXHAUSTED");
        assert.equal(error.grpcCode, 8);
        assert.equal(error.domain, "modelruntime.v1");
        assert.equal(error.provider, "fake");
        assert.equal(error.model, "fake-chat");
        assert.equal(error.retryAfterMs, 2500);
        assert.equal(error.retryAfterSeconds, 2.5);
        assert.equal(error.retryable, true);
        assert.equal(error.name, "InvokeRateLimitError");
        assert.match(
          error.message,
          /^INVOKE_RATE_LIMIT \(RESOURCE_EXHAUSTED\) \[fake\/fake-chat\]: .+\(retry after 2\.5s\)$/,
        );
        assert.ok(error.status, "the decoded google.rpc.Status");
        assert.equal(error.status.code, 8);
        assert.deepEqual(
          error.status.details.map((d) => d.typeUrl),
          ["type.googleapis.com/google.rpc.ErrorInfo", "type.googleapis.com/google.rpc.RetryInfo"],
        );
        assert.ok(error.trailers.get("grpc-status-details-bin"), "the trailer it was decoded from");
      },
    );

    it("names the offending parameter of an invalid-parameter error", TEST, async () => {
      const error = await expectError(
        client.invokeLLM(chat({ temperature: 0.5, bogus: 1 })),
        InvalidParameterError,
      );
      assert.equal(error.reason, "INVALID_PARAMETER");
      assert.equal(error.code, "INVALID_ARGUMENT");
      assert.equal(error.retryable, false);
      assert.equal(error.fieldViolations.length, 1);
      assert.equal(error.fieldViolations[0]?.field, "model_parameters.bogus");
      assert.match(error.fieldViolations[0]?.description ?? "", /unknown parameter/);
    });

    it(
      "throws the same typed error from a stream that fails before its first chunk",
      TEST,
      async () => {
        const stream = client.streamLLM(chat({ max_tokens: "many" }));
        const error = await expectError(collect(stream), InvalidParameterError);
        assert.equal(error.fieldViolations[0]?.field, "model_parameters.max_tokens");
      },
    );

    it("sends integers as int_value and accepts them for float rules", TEST, async () => {
      // temperature is a float rule: 1 goes as int_value, which a float rule accepts.
      const result = await client.invokeLLM(
        chat({ temperature: 1, top_p: 0.5, max_tokens: 3, reply: "a b c d e" }),
      );
      assert.equal(result.message?.content, "a b c ");
      assert.equal(result.finishReason, "length");
    });

    it(
      "maps an upstream refusal of the credentials to InvokeAuthorizationError",
      TEST,
      async () => {
        const error = await expectError(
          client.invokeLLM({ ...chat({}), credentials: { api_key: "revoked-key" } }),
          InvokeAuthorizationError,
        );
        assert.equal(error.code, "PERMISSION_DENIED");
        assert.doesNotMatch(error.message, /revoked-key/, "secrets are never echoed");
      },
    );

    it("maps unknown providers and models to NotFound errors", TEST, async () => {
      const provider = await expectError(
        client.invokeLLM({ ...chat({}), provider: "nope" }),
        ProviderNotFoundError,
      );
      assert.equal(provider.reason, "PROVIDER_NOT_FOUND");
      assert.equal(provider.code, "NOT_FOUND");
      const model = await expectError(
        client.getModelSchema({ provider: "fake", modelType: "llm", model: "no-such-model" }),
        ModelNotFoundError,
      );
      assert.equal(model.reason, "MODEL_NOT_FOUND");
    });

    it("maps a malformed request to InvalidRequestError with the field", TEST, async () => {
      const error = await expectError(
        client.invokeLLM({ ...CHAT, promptMessages: [] }),
        InvalidRequestError,
      );
      assert.equal(error.code, "INVALID_ARGUMENT");
      assert.ok(error.fieldViolations.some((v) => v.field.startsWith("prompt_messages")));
    });

    it("maps a refused connection to a retryable InvokeConnectionError", TEST, async () => {
      const port = await new Promise<number>((done) => {
        const probe = createServer().listen(0, "127.0.0.1", () => {
          const address = probe.address();
          probe.close(() => done(typeof address === "object" && address ? address.port : 0));
        });
      });
      const dead = new ModelRuntimeClient(`127.0.0.1:${port}`, { defaultTimeoutMs: 2_000 });
      try {
        const error = await expectError(dead.listProviders(), InvokeConnectionError);
        assert.equal(error.code, "UNAVAILABLE");
        assert.equal(error.reason, "");
        assert.equal(error.retryable, true);
      } finally {
        dead.close();
      }
    });

    it("refuses bad inputs before any call, naming the culprit", () => {
      assert.throws(
        () =>
          client.streamLLM({
            ...CHAT,
            promptMessages: [{ role: "user", content: "hi", tool_call_id: "x" } as never],
          }),
        /promptMessages\[0\]: unknown key\(s\) tool_call_id/,
      );
      assert.throws(
        () => client.streamLLM(chat({ temperature: {} as never })),
        /model parameter "temperature"/,
      );
      assert.throws(
        () => client.streamLLM({ ...chat({}), promptMessages: [{ role: "robot" as never }] }),
        /unknown role "robot"/,
      );
    });
  });

  describe("deadlines and cancellation", () => {
    it("ends a stream that outlives its deadline with InvokeTimeoutError", TEST, async () => {
      const started = Date.now();
      const received: LLMResultChunk[] = [];
      const error = await expectError(
        (async () => {
          for await (const chunk of client.streamLLM(
            chat({ reply: SLOW_REPLY, chunk_delay_ms: 100 }),
            {
              timeoutMs: 500,
            },
          )) {
            received.push(chunk);
          }
        })(),
        InvokeTimeoutError,
      );
      const elapsed = Date.now() - started;
      assert.equal(error.code, "DEADLINE_EXCEEDED");
      assert.ok(received.length < 40, `${received.length} chunks before the deadline`);
      // The server answers a little before the deadline (its margin), the client's timer at it.
      assert.ok(elapsed >= 300 && elapsed < 2_000, `failed after ${elapsed} ms`);
    });

    it("ends a unary call that outlives its deadline with InvokeTimeoutError", TEST, async () => {
      const started = Date.now();
      const error = await expectError(
        client.invokeLLM(chat({ reply: SLOW_REPLY, chunk_delay_ms: 100 }), { timeoutMs: 400 }),
        InvokeTimeoutError,
      );
      assert.equal(error.code, "DEADLINE_EXCEEDED");
      assert.ok(Date.now() - started < 2_000);
    });

    it(
      "cancels the call when the loop is left early, and the server stops at once",
      TEST,
      async () => {
        const since = Date.now();
        const received: string[] = [];
        for await (const chunk of client.streamLLM(
          chat({ reply: SLOW_REPLY, chunk_delay_ms: 100 }),
        )) {
          received.push(chunk.delta?.message?.content ?? "");
          if (received.length === 2) break;
        }
        const brokeAt = Date.now();
        assert.deepEqual(received, ["w0 ", "w1 "]);
        const line = await server.waitForLog(
          /StreamLLM provider=fake model=fake-chat outcome=Cancelled chunks=\d+ /,
          since,
        );
        assert.ok(
          line,
          `the server logged the stream as cancelled; its log:\n${server.logSince(since)}`,
        );
        assertSentBeforeCancel(line.text, 2);
        assert.ok(
          line.at - brokeAt < 1_000,
          `the server saw the cancellation ${line.at - brokeAt} ms later`,
        );
      },
    );

    it(
      "cancel() stops a stream being read elsewhere; the reader gets CallCancelledError",
      TEST,
      async () => {
        const since = Date.now();
        const stream = client.streamLLM(chat({ reply: SLOW_REPLY, chunk_delay_ms: 100 }));
        const received: LLMResultChunk[] = [];
        const reading = (async () => {
          for await (const chunk of stream) {
            received.push(chunk);
            if (received.length === 3) setTimeout(() => stream.cancel("the user pressed stop"), 0);
          }
        })();
        const error = await expectError(reading, CallCancelledError);
        assert.equal(error.code, "CANCELLED");
        assert.match(error.message, /the user pressed stop/);
        assert.equal(stream.cancelled, true);
        assert.equal(received.length, 3);
        const line = await server.waitForLog(
          /StreamLLM provider=fake model=fake-chat outcome=Cancelled chunks=\d+ /,
          since,
        );
        assert.ok(
          line,
          `the server logged the stream as cancelled; its log:\n${server.logSince(since)}`,
        );
        assertSentBeforeCancel(line.text, 3);
      },
    );

    it("an AbortSignal cancels a stream and a unary call", TEST, async () => {
      const controller = new AbortController();
      const stream = client.streamLLM(chat({ reply: SLOW_REPLY, chunk_delay_ms: 100 }), {
        signal: controller.signal,
      });
      setTimeout(() => controller.abort(), 250);
      await expectError(collect(stream), CallCancelledError);

      const unary = new AbortController();
      setTimeout(() => unary.abort(), 200);
      const started = Date.now();
      await expectError(
        client.invokeLLM(chat({ reply: SLOW_REPLY, chunk_delay_ms: 100 }), {
          signal: unary.signal,
        }),
        CallCancelledError,
      );
      assert.ok(Date.now() - started < 2_000);

      // AbortSignal.timeout() is a deadline kept by this process: InvokeTimeoutError.
      await expectError(
        client.invokeLLM(chat({ reply: SLOW_REPLY, chunk_delay_ms: 100 }), {
          signal: AbortSignal.timeout(200),
        }),
        InvokeTimeoutError,
      );
    });

    it("keeps serving after cancellations", TEST, async () => {
      await sleep(50);
      const result = await client.invokeLLM(chat({ reply: "still here" }));
      assert.equal(result.message?.content, "still here");
    });
  });

  describe("the other operations", () => {
    it("lists providers and models and reads a model's schema", TEST, async () => {
      const providers = await client.listProviders();
      assert.ok(providers.some((p) => p.provider === "fake"));
      const embedders = await client.listProviders({ modelType: "text-embedding" });
      assert.ok(embedders.every((p) => p.supportedModelTypes.includes(ModelType.TEXT_EMBEDDING)));
      const models = await client.listModels({ provider: "fake", modelType: "llm" });
      assert.ok(models.some((m) => m.model === "fake-chat"));
      const schema = await client.getModelSchema({
        provider: "fake",
        modelType: "llm",
        model: "fake-chat",
      });
      assert.ok(schema.parameterRules.some((rule) => rule.name === "temperature"));
    });

    it("validates credentials", TEST, async () => {
      const kept = await client.validateProviderCredentials({
        provider: "fake",
        credentials: CREDENTIALS,
      });
      assert.equal(typeof kept, "object");
      assert.equal(kept.api_key, undefined, "secret fields are left out");
      await client.validateModelCredentials({
        provider: "fake",
        modelType: "llm",
        model: "fake-chat",
        credentials: CREDENTIALS,
      });
    });

    it("embeds texts into 16-dimensional vectors and counts their tokens", TEST, async () => {
      const response = await client.invokeTextEmbedding({
        provider: "fake",
        model: "fake-embedding",
        credentials: CREDENTIALS,
        texts: ["hello world", "goodbye"],
        inputType: "query",
      });
      assert.equal(response.embeddings.length, 2);
      for (const embedding of response.embeddings) {
        assert.equal(embedding.values.length, 16);
        const norm = Math.hypot(...embedding.values);
        assert.ok(Math.abs(norm - 1) < 1e-3, `unit vector, norm ${norm}`);
      }
      assert.ok((response.usage?.tokens ?? 0n) > 0n);
      const counts = await client.getTextEmbeddingNumTokens({
        provider: "fake",
        model: "fake-embedding",
        credentials: CREDENTIALS,
        texts: ["hello world", "goodbye"],
      });
      assert.equal(counts.length, 2);
      assert.ok(counts.every((n) => typeof n === "number" && n > 0));
    });

    it("counts prompt tokens, reranks, moderates", TEST, async () => {
      const tokens = await client.getLLMNumTokens({
        ...CHAT,
        promptMessages: "how many tokens is this",
      });
      assert.ok(tokens > 0);
      const reranked = await client.invokeRerank({
        provider: "fake",
        model: "fake-rerank",
        credentials: CREDENTIALS,
        query: "purring cats",
        docs: ["dogs bark", "cats purr and cats sleep"],
        topN: 1,
      });
      assert.equal(reranked.docs.length, 1);
      assert.equal(reranked.docs[0]?.index, 1);
      assert.equal(
        await client.invokeModeration({
          provider: "fake",
          model: "fake-moderation",
          credentials: CREDENTIALS,
          text: "a kind word",
        }),
        false,
      );
    });

    it("synthesises speech as a stream of bytes that transcribes back", TEST, async () => {
      const audio = await client.invokeTTS({
        provider: "fake",
        model: "fake-tts",
        credentials: CREDENTIALS,
        contentText: "hello there",
      });
      assert.equal(audio.mimeType, "audio/wav");
      const pieces: Uint8Array[] = [];
      for await (const piece of audio) pieces.push(piece);
      const wav = Buffer.concat(pieces);
      assert.equal(wav.subarray(0, 4).toString("latin1"), "RIFF");
      const text = await client.invokeSpeech2Text({
        provider: "fake",
        model: "fake-speech2text",
        credentials: CREDENTIALS,
        file: new Blob([wav]),
        filename: "hello.wav",
      });
      assert.equal(text, "hello there");
    });

    it("sends the client's and the call's headers", TEST, async () => {
      const seen: Headers[] = [];
      const withHeaders = new ModelRuntimeClient(server.address, {
        headers: { "x-client": "ts" },
        interceptors: [
          (next) => async (request) => {
            seen.push(new Headers(request.header));
            return next(request);
          },
        ],
      });
      try {
        await withHeaders.listProviders({}, { headers: { "x-request-id": "3f2a" } });
      } finally {
        withHeaders.close();
      }
      assert.equal(seen[0]?.get("x-client"), "ts");
      assert.equal(seen[0]?.get("x-request-id"), "3f2a");
    });
  });
});

/**
 * The server counts the chunks it had sent when the cancellation reached it: the ones the client
 * read, plus any already on their way (one chunk every 100 ms, so at most a couple on a loaded
 * machine).
 */
function assertSentBeforeCancel(logLine: string, read: number): void {
  const sent = Number(/chunks=(\d+) /.exec(logLine)?.[1]);
  assert.ok(
    sent >= read && sent <= read + 2,
    `the server had sent ${sent} chunks when the client, having read ${read}, cancelled`,
  );
}
