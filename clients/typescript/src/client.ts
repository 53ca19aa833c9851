// The client: one method per RPC, plain values in, contract messages out, typed errors.

import type * as http2 from "node:http2";

import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createClient,
  type Client,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import {
  Http2SessionManager,
  createGrpcTransport,
  type GrpcTransportOptions,
} from "@connectrpc/connect-node";

import {
  toCredentials,
  toEmbeddingInputType,
  toModelParameters,
  toModelType,
  toPromptMessages,
  toStrings,
  toTools,
  type EmbeddingInputTypeInput,
  type ModelTypeInput,
  type ParameterInput,
  type PromptMessagesInput,
  type ToolInput,
} from "./convert.js";
import { fromConnectError } from "./errors.js";
import type { LLMResult, LLMResultChunk } from "./gen/modelruntime/v1/llm_pb.js";
import {
  GetLLMNumTokensRequestSchema,
  GetModelSchemaRequestSchema,
  GetTextEmbeddingNumTokensRequestSchema,
  InvokeLLMRequestSchema,
  InvokeModerationRequestSchema,
  InvokeRerankRequestSchema,
  InvokeSpeech2TextRequestSchema,
  InvokeTTSRequestSchema,
  InvokeTextEmbeddingRequestSchema,
  ListModelsRequestSchema,
  ListProvidersRequestSchema,
  ModelRuntimeService,
  StreamLLMRequestSchema,
  ValidateModelCredentialsRequestSchema,
  ValidateProviderCredentialsRequestSchema,
  type InvokeRerankResponse,
  type InvokeTTSResponse,
  type InvokeTextEmbeddingResponse,
  type StreamLLMRequest,
  type StreamLLMResponse,
} from "./gen/modelruntime/v1/model_runtime_service_pb.js";
import {
  ModelType,
  type AIModelEntity,
  type ProviderEntity,
} from "./gen/modelruntime/v1/schema_pb.js";

/** What `new Headers(...)` accepts: a `Headers`, an object or a list of pairs. */
export type HeadersInit = ConstructorParameters<typeof Headers>[0];

/** The address `make run` and `modelruntime serve` listen on by default. */
export const DEFAULT_ADDRESS = "127.0.0.1:50051";

/** Options of one call. */
export interface CallOptions {
  /**
   * The call's deadline, in milliseconds from now; it travels to the server, which makes it the
   * upstream request's timeout too. For streams it covers the whole stream. Left out, the
   * client's `defaultTimeoutMs` applies; `null` means no deadline.
   */
  timeoutMs?: number | null;
  /** Aborting it cancels the call (it then fails with `CallCancelledError`). */
  signal?: AbortSignal;
  /** Request metadata for this call, added to the client's `headers`. */
  headers?: HeadersInit;
}

export interface ClientOptions {
  /** The deadline of every call that does not set `timeoutMs`; left out: no deadline. */
  defaultTimeoutMs?: number | null;
  /** Request metadata sent with every call (for example the runtime's own auth). */
  headers?: HeadersInit;
  /** Connect interceptors, run around every call. */
  interceptors?: Interceptor[];
  /**
   * Options of the HTTP/2 connection, for example `{ ca }` for a private CA with an
   * `https://` address.
   */
  nodeOptions?: http2.ClientSessionOptions | http2.SecureClientSessionOptions;
  /** Any other option of `createGrpcTransport` (keepalive pings, message size limits, ...). */
  transportOptions?: Partial<GrpcTransportOptions>;
}

/** The fields of an LLM call (InvokeLLM and StreamLLM take the same ones). */
export interface LLMInput {
  provider: string;
  model: string;
  credentials: Readonly<Record<string, string>>;
  /** A string (one user message) or a list of messages such as `{ role: "user", content: "hi" }`. */
  promptMessages: PromptMessagesInput;
  /** Parameters by rule name, for example `{ temperature: 0.2, max_tokens: 200 }`. */
  modelParameters?: Readonly<Record<string, ParameterInput>>;
  tools?: readonly ToolInput[];
  stop?: readonly string[];
  user?: string;
}

interface ModelTarget {
  provider: string;
  model: string;
  credentials: Readonly<Record<string, string>>;
}

export interface GetLLMNumTokensInput extends ModelTarget {
  promptMessages: PromptMessagesInput;
  tools?: readonly ToolInput[];
}

export interface InvokeTextEmbeddingInput extends ModelTarget {
  texts: readonly string[];
  user?: string;
  /** `"document"` (the default) or `"query"`. */
  inputType?: EmbeddingInputTypeInput;
}

export interface GetTextEmbeddingNumTokensInput extends ModelTarget {
  texts: readonly string[];
}

export interface InvokeRerankInput extends ModelTarget {
  query: string;
  docs: readonly string[];
  /** Documents scoring below this are left out. */
  scoreThreshold?: number;
  /** At most this many documents are returned. */
  topN?: number;
  user?: string;
}

export interface InvokeSpeech2TextInput extends ModelTarget {
  /** The audio file's bytes; a `Blob`/`File` is read (a `File`'s name serves as `filename`). */
  file: Uint8Array | ArrayBuffer | Blob;
  /** The file's name; its extension tells the upstream the format (for example `audio.mp3`). */
  filename?: string;
  user?: string;
}

export interface InvokeTTSInput extends ModelTarget {
  contentText: string;
  /** One of the model's `voices[].mode`; empty takes the model's default voice. */
  voice?: string;
  user?: string;
}

export interface InvokeModerationInput extends ModelTarget {
  text: string;
  user?: string;
}

type Service = Client<typeof ModelRuntimeService>;
type ConnectCallOptions = {
  timeoutMs?: number | undefined;
  signal: AbortSignal;
  headers?: HeadersInit | undefined;
};

function baseUrlOf(address: string): string {
  if (/^https?:\/\//.test(address)) return address;
  if (address.includes("://")) {
    throw new TypeError(
      `address ${JSON.stringify(address)}: use host:port, http://host:port or https://host:port`,
    );
  }
  return `http://${address}`; // host:port: plaintext, as behind a service-mesh sidecar
}

function checkTimeout(timeoutMs: number | null | undefined, what: string): void {
  if (timeoutMs === undefined || timeoutMs === null) return;
  if (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(
      `${what} must be a positive number of milliseconds or null, not ${String(timeoutMs)}`,
    );
  }
}

// A user's abort becomes CANCELLED whatever its reason, except AbortSignal.timeout(), which is a
// deadline kept by this process alone: DEADLINE_EXCEEDED.
function abortReason(signal: AbortSignal): ConnectError {
  const reason: unknown = signal.reason;
  if (reason instanceof ConnectError) return reason;
  if (reason instanceof Error && reason.name === "TimeoutError") {
    return new ConnectError(reason.message, Code.DeadlineExceeded, undefined, undefined, reason);
  }
  const text =
    reason instanceof Error ? reason.message : reason === undefined ? "" : String(reason);
  return new ConnectError(
    text ? `the call was cancelled: ${text}` : "the call was cancelled",
    Code.Canceled,
    undefined,
    undefined,
    reason,
  );
}

// After an abort, one more read lets Connect see it and release the call (its deadline timer
// would otherwise keep the process alive until it fires). Not awaited: it settles on its own.
function settle(responses: AsyncIterator<unknown> | undefined): void {
  responses?.next().catch(() => undefined);
}

/**
 * One call's cancellation: an AbortController linked to the caller's signal. `done()` unlinks
 * it, so a long-lived signal does not collect listeners.
 */
class CallScope {
  readonly controller = new AbortController();
  readonly #userSignal: AbortSignal | undefined;
  readonly #onAbort = (): void => this.abort(abortReason(this.#userSignal as AbortSignal));

  constructor(userSignal: AbortSignal | undefined) {
    this.#userSignal = userSignal;
    if (userSignal === undefined) return;
    if (userSignal.aborted) this.#onAbort();
    else userSignal.addEventListener("abort", this.#onAbort, { once: true });
  }

  abort(reason: ConnectError): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  done(): void {
    this.#userSignal?.removeEventListener("abort", this.#onAbort);
  }
}

/**
 * A streamed LLM answer: iterate it with `for await` to get one `LLMResultChunk` per upstream
 * delta, in order (the server may pack several into one gRPC message; they are unpacked here).
 *
 * The call starts when the iteration starts. Leaving the loop early (`break`, `return`, an
 * exception) cancels the call, so the server stops generating at once. `cancel()` does the same
 * from elsewhere (a "stop" button); the reading loop then throws `CallCancelledError`. Errors
 * the server sends after some chunks are thrown from the iteration, after those chunks; a stream
 * never ends early without an error. A stream can be iterated once.
 */
export class LLMStream implements AsyncIterable<LLMResultChunk> {
  readonly #open: (options: ConnectCallOptions) => AsyncIterable<StreamLLMResponse>;
  readonly #signal: AbortSignal | undefined;
  readonly #timeoutMs: number | undefined;
  #scope: CallScope | undefined;
  #cancelReason: ConnectError | undefined;
  #state: "new" | "open" | "finished" = "new";

  /** @internal Use `ModelRuntimeClient.streamLLM`. */
  constructor(
    open: (options: ConnectCallOptions) => AsyncIterable<StreamLLMResponse>,
    timeoutMs: number | undefined,
    signal: AbortSignal | undefined,
  ) {
    this.#open = open;
    this.#timeoutMs = timeoutMs;
    this.#signal = signal;
  }

  /** True once the call was cancelled, by `cancel()`, the signal, or leaving the loop early. */
  get cancelled(): boolean {
    return this.#cancelReason !== undefined || (this.#scope?.controller.signal.aborted ?? false);
  }

  /** Cancels the call; a loop reading the stream throws `CallCancelledError`. */
  cancel(reason = "cancelled by the client"): void {
    if (this.#state === "finished") return;
    const error = new ConnectError(reason, Code.Canceled);
    this.#cancelReason ??= error;
    this.#scope?.abort(error);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<LLMResultChunk, void, undefined> {
    if (this.#state !== "new") throw new TypeError("an LLMStream can be iterated only once");
    this.#state = "open";
    const scope = new CallScope(this.#signal);
    this.#scope = scope;
    if (this.#cancelReason !== undefined) scope.abort(this.#cancelReason);
    let ended = false;
    let responses: AsyncIterator<StreamLLMResponse> | undefined;
    try {
      responses = this.#open({ timeoutMs: this.#timeoutMs, signal: scope.controller.signal })[
        Symbol.asyncIterator
      ]();
      for (;;) {
        const next = await responses.next();
        if (next.done) break;
        for (const chunk of next.value.chunks) yield chunk;
      }
      ended = true;
    } catch (error) {
      ended = true; // the call is over already
      throw fromConnectError(error);
    } finally {
      this.#state = "finished";
      if (!ended) {
        // The consumer left the loop before the end: cancel the call so the server stops.
        scope.abort(new ConnectError("the consumer stopped reading the stream", Code.Canceled));
        settle(responses);
      }
      scope.done();
    }
  }

  /** `await using stream = client.streamLLM(...)` cancels the call when the block ends. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.cancel("the stream was disposed");
  }
}

/**
 * Synthesised audio: `mimeType` is known before any audio is read (the first message carries
 * it); iterate with `for await` to get the audio's bytes, to concatenate in order. Leaving the
 * loop early, or `cancel()`, cancels the call.
 */
export class AudioStream implements AsyncIterable<Uint8Array> {
  /** The audio's MIME type, for example `audio/wav`. */
  readonly mimeType: string;
  readonly #first: Uint8Array | undefined;
  readonly #rest: AsyncIterator<InvokeTTSResponse>;
  readonly #scope: CallScope;
  #state: "new" | "open" | "finished";

  /** @internal Use `ModelRuntimeClient.invokeTTS`. */
  constructor(
    first: InvokeTTSResponse | undefined,
    rest: AsyncIterator<InvokeTTSResponse>,
    scope: CallScope,
  ) {
    this.mimeType = first?.mimeType ?? "";
    this.#first = first?.audio;
    this.#rest = rest;
    this.#scope = scope;
    this.#state = first === undefined ? "finished" : "new";
    if (first === undefined) scope.done();
  }

  /** Cancels the call; a loop reading the stream throws `CallCancelledError`. */
  cancel(reason = "cancelled by the client"): void {
    if (this.#state === "finished") return;
    this.#scope.abort(new ConnectError(reason, Code.Canceled));
    if (this.#state === "new") {
      // Nobody reads the stream: let the call wind down now.
      this.#state = "finished";
      settle(this.#rest);
      this.#scope.done();
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    if (this.#state === "open") throw new TypeError("an AudioStream can be iterated only once");
    if (this.#state === "finished") return;
    this.#state = "open";
    let ended = false;
    try {
      if (this.#first !== undefined && this.#first.length > 0) yield this.#first;
      for (;;) {
        const next = await this.#rest.next();
        if (next.done) break;
        // Messages without audio yield nothing.
        if (next.value.audio.length > 0) yield next.value.audio;
      }
      ended = true;
    } catch (error) {
      ended = true;
      throw fromConnectError(error);
    } finally {
      this.#state = "finished";
      if (!ended) {
        this.#scope.abort(
          new ConnectError("the consumer stopped reading the audio", Code.Canceled),
        );
        settle(this.#rest);
      }
      this.#scope.done();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.cancel("the stream was disposed");
  }
}

/**
 * The modelruntime client. One per process is enough: one HTTP/2 connection carries many
 * concurrent calls. Calls are plain async functions; `streamLLM` returns an async iterable.
 *
 * ```ts
 * const client = new ModelRuntimeClient("127.0.0.1:50051", { defaultTimeoutMs: 60_000 });
 * for await (const chunk of client.streamLLM({ provider, model, credentials, promptMessages })) {
 *   process.stdout.write(chunk.delta?.message?.content ?? "");
 * }
 * client.close();
 * ```
 */
export class ModelRuntimeClient {
  /** The raw Connect client of the generated service, for anything this class does not cover. */
  readonly raw: Service;
  readonly defaultTimeoutMs: number | null;
  readonly #headers: Headers;
  readonly #sessionManager: Http2SessionManager | undefined;

  /**
   * @param address `host:port` (plaintext), `http://host:port` or `https://host:port` (TLS); or
   *   a Connect `Transport` of your own (see `fromTransport`).
   */
  constructor(address: string | Transport = DEFAULT_ADDRESS, options: ClientOptions = {}) {
    checkTimeout(options.defaultTimeoutMs, "defaultTimeoutMs");
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? null;
    this.#headers = new Headers(options.headers);
    if (typeof address !== "string") {
      this.raw = createClient(ModelRuntimeService, address);
      return;
    }
    const baseUrl = baseUrlOf(address);
    const transportOptions = options.transportOptions ?? {};
    if (transportOptions.sessionManager === undefined) {
      this.#sessionManager = new Http2SessionManager(
        baseUrl,
        {
          pingIntervalMs: transportOptions.pingIntervalMs,
          pingIdleConnection: transportOptions.pingIdleConnection,
          pingTimeoutMs: transportOptions.pingTimeoutMs,
          idleConnectionTimeoutMs: transportOptions.idleConnectionTimeoutMs,
        },
        options.nodeOptions ?? transportOptions.nodeOptions,
      );
    }
    const transport = createGrpcTransport({
      ...transportOptions,
      baseUrl,
      interceptors: [...(transportOptions.interceptors ?? []), ...(options.interceptors ?? [])],
      sessionManager: transportOptions.sessionManager ?? this.#sessionManager,
    });
    this.raw = createClient(ModelRuntimeService, transport);
  }

  /**
   * A client on your own Connect transport (for example `createGrpcTransport` with options of
   * your own, or a test transport). `close()` leaves the transport alone: it is yours.
   */
  static fromTransport(
    transport: Transport,
    options: Pick<ClientOptions, "defaultTimeoutMs" | "headers"> = {},
  ): ModelRuntimeClient {
    return new ModelRuntimeClient(transport, options);
  }

  /**
   * Closes the HTTP/2 connection; calls still running fail. Idle connections do not keep the
   * process alive, so this is needed only to release the connection early. A client made with
   * `fromTransport` leaves the transport alone.
   */
  close(): void {
    this.#sessionManager?.abort();
  }

  /** `using client = new ModelRuntimeClient(...)` closes it at the end of the block. */
  [Symbol.dispose](): void {
    this.close();
  }

  #timeout(options: CallOptions): number | undefined {
    checkTimeout(options.timeoutMs, "timeoutMs");
    const timeoutMs = options.timeoutMs === undefined ? this.defaultTimeoutMs : options.timeoutMs;
    return timeoutMs ?? undefined;
  }

  #headersFor(options: CallOptions): Headers | undefined {
    if (options.headers === undefined)
      return [...this.#headers.keys()].length > 0 ? this.#headers : undefined;
    const merged = new Headers(this.#headers);
    new Headers(options.headers).forEach((value, key) => merged.append(key, value));
    return merged;
  }

  async #unary<I extends DescMessage, O>(
    call: (request: MessageInitShape<I>, options: ConnectCallOptions) => Promise<O>,
    request: MessageInitShape<I>,
    options: CallOptions,
  ): Promise<O> {
    const timeoutMs = this.#timeout(options);
    const scope = new CallScope(options.signal);
    try {
      return await call(request, {
        timeoutMs,
        signal: scope.controller.signal,
        headers: this.#headersFor(options),
      });
    } catch (error) {
      throw fromConnectError(error);
    } finally {
      scope.done();
    }
  }

  /** The loaded providers, optionally only those offering a model type. */
  async listProviders(
    request: { modelType?: ModelTypeInput } = {},
    options: CallOptions = {},
  ): Promise<ProviderEntity[]> {
    const message = create(ListProvidersRequestSchema, {
      modelType:
        request.modelType === undefined ? ModelType.UNSPECIFIED : toModelType(request.modelType),
    });
    return (await this.#unary((r, o) => this.raw.listProviders(r, o), message, options)).providers;
  }

  /** The predefined models of one provider, optionally of one type. */
  async listModels(
    request: { provider: string; modelType?: ModelTypeInput },
    options: CallOptions = {},
  ): Promise<AIModelEntity[]> {
    const message = create(ListModelsRequestSchema, {
      provider: request.provider,
      modelType:
        request.modelType === undefined ? ModelType.UNSPECIFIED : toModelType(request.modelType),
    });
    return (await this.#unary((r, o) => this.raw.listModels(r, o), message, options)).models;
  }

  /** One model's schema (its parameter rules, features, pricing, ...). */
  async getModelSchema(
    request: {
      provider: string;
      modelType: ModelTypeInput;
      model: string;
      credentials?: Readonly<Record<string, string>>;
    },
    options: CallOptions = {},
  ): Promise<AIModelEntity> {
    const message = create(GetModelSchemaRequestSchema, {
      provider: request.provider,
      modelType: toModelType(request.modelType),
      model: request.model,
      credentials: toCredentials(request.credentials),
    });
    const response = await this.#unary((r, o) => this.raw.getModelSchema(r, o), message, options);
    if (response.modelSchema === undefined) {
      throw fromConnectError(new ConnectError("the server sent no model schema", Code.Internal));
    }
    return response.modelSchema;
  }

  /** Checks provider credentials; returns them as the provider keeps them. */
  async validateProviderCredentials(
    request: { provider: string; credentials: Readonly<Record<string, string>> },
    options: CallOptions = {},
  ): Promise<Record<string, string>> {
    const message = create(ValidateProviderCredentialsRequestSchema, {
      provider: request.provider,
      credentials: toCredentials(request.credentials),
    });
    return (
      await this.#unary((r, o) => this.raw.validateProviderCredentials(r, o), message, options)
    ).credentials;
  }

  /** Checks one model's credentials; returns them as the provider keeps them. */
  async validateModelCredentials(
    request: {
      provider: string;
      modelType: ModelTypeInput;
      model: string;
      credentials: Readonly<Record<string, string>>;
    },
    options: CallOptions = {},
  ): Promise<Record<string, string>> {
    const message = create(ValidateModelCredentialsRequestSchema, {
      provider: request.provider,
      modelType: toModelType(request.modelType),
      model: request.model,
      credentials: toCredentials(request.credentials),
    });
    return (await this.#unary((r, o) => this.raw.validateModelCredentials(r, o), message, options))
      .credentials;
  }

  /** Runs an LLM and returns the whole answer. */
  async invokeLLM(request: LLMInput, options: CallOptions = {}): Promise<LLMResult> {
    const message = create(InvokeLLMRequestSchema, llmFields(request));
    const response = await this.#unary((r, o) => this.raw.invokeLLM(r, o), message, options);
    if (response.result === undefined) {
      throw fromConnectError(new ConnectError("the server sent no result", Code.Internal));
    }
    return response.result;
  }

  /**
   * Runs an LLM and streams its answer, chunk by chunk (see `LLMStream`). The request is checked
   * here, at once; the call starts when you start iterating.
   */
  streamLLM(request: LLMInput, options: CallOptions = {}): LLMStream {
    const message: StreamLLMRequest = create(StreamLLMRequestSchema, llmFields(request));
    const timeoutMs = this.#timeout(options);
    const headers = this.#headersFor(options);
    return new LLMStream(
      (o) => this.raw.streamLLM(message, { ...o, headers }),
      timeoutMs,
      options.signal,
    );
  }

  /** How many tokens a prompt would use. */
  async getLLMNumTokens(request: GetLLMNumTokensInput, options: CallOptions = {}): Promise<number> {
    const message = create(GetLLMNumTokensRequestSchema, {
      provider: request.provider,
      model: request.model,
      credentials: toCredentials(request.credentials),
      promptMessages: toPromptMessages(request.promptMessages),
      tools: toTools(request.tools),
    });
    return Number(
      (await this.#unary((r, o) => this.raw.getLLMNumTokens(r, o), message, options)).numTokens,
    );
  }

  /** Embeds texts: one `embeddings[i].values` per text, in order, with usage. */
  async invokeTextEmbedding(
    request: InvokeTextEmbeddingInput,
    options: CallOptions = {},
  ): Promise<InvokeTextEmbeddingResponse> {
    const message = create(InvokeTextEmbeddingRequestSchema, {
      provider: request.provider,
      model: request.model,
      credentials: toCredentials(request.credentials),
      texts: toStrings(request.texts, "texts"),
      user: request.user ?? "",
      inputType: toEmbeddingInputType(request.inputType),
    });
    return this.#unary((r, o) => this.raw.invokeTextEmbedding(r, o), message, options);
  }

  /** The token count of each text, in order. */
  async getTextEmbeddingNumTokens(
    request: GetTextEmbeddingNumTokensInput,
    options: CallOptions = {},
  ): Promise<number[]> {
    const message = create(GetTextEmbeddingNumTokensRequestSchema, {
      provider: request.provider,
      model: request.model,
      credentials: toCredentials(request.credentials),
      texts: toStrings(request.texts, "texts"),
    });
    const response = await this.#unary(
      (r, o) => this.raw.getTextEmbeddingNumTokens(r, o),
      message,
      options,
    );
    return response.numTokens.map(Number);
  }

  /** Scores documents against a query; `docs` come back best first. */
  async invokeRerank(
    request: InvokeRerankInput,
    options: CallOptions = {},
  ): Promise<InvokeRerankResponse> {
    const message = create(InvokeRerankRequestSchema, {
      provider: request.provider,
      model: request.model,
      credentials: toCredentials(request.credentials),
      query: request.query,
      docs: toStrings(request.docs, "docs"),
      scoreThreshold: request.scoreThreshold,
      topN: request.topN,
      user: request.user ?? "",
    });
    return this.#unary((r, o) => this.raw.invokeRerank(r, o), message, options);
  }

  /** Transcribes an audio file; returns the text. */
  async invokeSpeech2Text(
    request: InvokeSpeech2TextInput,
    options: CallOptions = {},
  ): Promise<string> {
    let file: Uint8Array;
    let filename = request.filename ?? "";
    if (request.file instanceof Uint8Array) {
      file = request.file;
    } else if (request.file instanceof ArrayBuffer) {
      file = new Uint8Array(request.file);
    } else if (typeof Blob !== "undefined" && request.file instanceof Blob) {
      file = new Uint8Array(await request.file.arrayBuffer());
      const name = (request.file as { name?: unknown }).name;
      if (!filename && typeof name === "string") filename = name.replace(/^.*[\\/]/, "");
    } else {
      throw new TypeError("file must be a Uint8Array (or Buffer), an ArrayBuffer or a Blob");
    }
    const message = create(InvokeSpeech2TextRequestSchema, {
      provider: request.provider,
      model: request.model,
      credentials: toCredentials(request.credentials),
      file,
      filename,
      user: request.user ?? "",
    });
    return (await this.#unary((r, o) => this.raw.invokeSpeech2Text(r, o), message, options)).result;
  }

  /**
   * Synthesises speech. Resolves once the first message has arrived, so `mimeType` is known
   * before any audio is read, and an error before any audio rejects this promise; then iterate
   * the `AudioStream` for the bytes.
   */
  async invokeTTS(request: InvokeTTSInput, options: CallOptions = {}): Promise<AudioStream> {
    const message = create(InvokeTTSRequestSchema, {
      provider: request.provider,
      model: request.model,
      credentials: toCredentials(request.credentials),
      contentText: request.contentText,
      voice: request.voice ?? "",
      user: request.user ?? "",
    });
    const timeoutMs = this.#timeout(options);
    const scope = new CallScope(options.signal);
    try {
      const responses = this.raw
        .invokeTTS(message, {
          timeoutMs,
          signal: scope.controller.signal,
          headers: this.#headersFor(options),
        })
        [Symbol.asyncIterator]();
      const first = await responses.next();
      return new AudioStream(first.done ? undefined : first.value, responses, scope);
    } catch (error) {
      scope.done();
      throw fromConnectError(error);
    }
  }

  /** Whether a text breaks the moderation model's policy (true when flagged). */
  async invokeModeration(
    request: InvokeModerationInput,
    options: CallOptions = {},
  ): Promise<boolean> {
    const message = create(InvokeModerationRequestSchema, {
      provider: request.provider,
      model: request.model,
      credentials: toCredentials(request.credentials),
      text: request.text,
      user: request.user ?? "",
    });
    return (await this.#unary((r, o) => this.raw.invokeModeration(r, o), message, options)).result;
  }
}

function llmFields(request: LLMInput) {
  if (typeof request.stop === "string")
    throw new TypeError("stop must be an array of strings, not a string");
  return {
    provider: request.provider,
    model: request.model,
    credentials: toCredentials(request.credentials),
    promptMessages: toPromptMessages(request.promptMessages),
    modelParameters: toModelParameters(request.modelParameters),
    tools: toTools(request.tools),
    stop: toStrings(request.stop, "stop"),
    user: request.user ?? "",
  };
}
