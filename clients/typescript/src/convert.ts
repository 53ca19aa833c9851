// Plain JavaScript values -> request messages.
//
// Every converter also accepts the message it produces (a protobuf-es message made with
// `create(...)`), unchanged, so callers can mix plain objects and messages. Mistakes in the
// values (an unknown key, a wrong type) throw `TypeError` or `RangeError` here, before any call
// is made: they are programming errors, not `ModelRuntimeError`s.

import { create, fromJson, isMessage, toJson, type JsonObject } from "@bufbuild/protobuf";
import { base64Encode } from "@bufbuild/protobuf/wire";
import { StructSchema, type Struct } from "@bufbuild/protobuf/wkt";

import {
  ImageDetail,
  MediaContentSchema,
  PromptMessageContentSchema,
  PromptMessageRole,
  PromptMessageSchema,
  PromptMessageToolSchema,
  ToolCallSchema,
  type MediaContent,
  type PromptMessage,
  type PromptMessageContent,
  type PromptMessageTool,
  type ToolCall,
} from "./gen/modelruntime/v1/llm_pb.js";
import { EmbeddingInputType } from "./gen/modelruntime/v1/model_runtime_service_pb.js";
import { ModelType } from "./gen/modelruntime/v1/schema_pb.js";
import { ParameterValueSchema, type ParameterValue } from "./gen/modelruntime/v1/value_pb.js";

/** A role by name. */
export type RoleName = "system" | "user" | "assistant" | "tool" | "developer";

/** A text part, or a media part given by exactly one of `url`, `base64Data` or `data`. */
export type ContentPartInput =
  | string
  | PromptMessageContent
  | { type: "text"; text: string }
  | {
      type: "image" | "audio" | "video" | "document";
      /** A URL the provider fetches the media from (`https:` or `data:`). */
      url?: string;
      /** The media's bytes, already base64-encoded. */
      base64Data?: string;
      /** The media's raw bytes (encoded to base64 here). */
      data?: Uint8Array;
      /** Required by the server, for example `image/png`. */
      mimeType?: string;
      format?: string;
      filename?: string;
      /** Images only. */
      detail?: "low" | "high" | ImageDetail;
    };

/** A message's content: plain text or a list of parts. */
export type ContentInput = string | readonly ContentPartInput[];

/** A complete tool call of an earlier assistant turn. `arguments` may be an object. */
export type ToolCallInput =
  | ToolCall
  | {
      id?: string;
      type?: string;
      function: { name: string; arguments?: string | JsonObject };
    };

/** `{ role: "user", content: "hi" }`, or a `PromptMessage`. */
export type PromptMessageInput =
  | PromptMessage
  | {
      role: RoleName | PromptMessageRole;
      content?: ContentInput;
      name?: string;
      /** Assistant messages: the tool calls the model made. */
      toolCalls?: readonly ToolCallInput[];
      /** Tool messages: the id of the call this message answers. */
      toolCallId?: string;
      /** Assistant messages: provider state to send back unchanged. */
      opaqueBody?: JsonObject | Struct;
    };

/** A bare string is one user message. */
export type PromptMessagesInput = string | readonly PromptMessageInput[];

/** `{ name, description, parameters }` or the OpenAI shape `{ type: "function", function }`. */
export type ToolInput = PromptMessageTool | ToolSpec | { type: "function"; function: ToolSpec };

/** A tool's definition; `parameters` is a JSON Schema object. */
export interface ToolSpec {
  name: string;
  description?: string;
  parameters?: JsonObject | Struct;
}

/**
 * A model parameter: `boolean` -> bool_value, `string` -> string_value, `bigint` -> int_value,
 * a `number` that is a safe integer -> int_value, any other number -> float_value. The server
 * accepts int_value for float rules, so `temperature: 1` is fine. Use `floatValue(x)` or
 * `intValue(x)` to choose the field yourself.
 */
export type ParameterInput = number | bigint | string | boolean | ParameterValue;

/** The model types by name, as in the providers' YAML. */
export type ModelTypeName =
  "llm" | "text-embedding" | "text_embedding" | "rerank" | "speech2text" | "tts" | "moderation";

export type ModelTypeInput = ModelTypeName | ModelType;

export type EmbeddingInputTypeInput = "document" | "query" | EmbeddingInputType;

const ROLES: Readonly<Record<RoleName, PromptMessageRole>> = {
  system: PromptMessageRole.SYSTEM,
  user: PromptMessageRole.USER,
  assistant: PromptMessageRole.ASSISTANT,
  tool: PromptMessageRole.TOOL,
  developer: PromptMessageRole.DEVELOPER,
};

const MODEL_TYPES: Readonly<Record<ModelTypeName, ModelType>> = {
  llm: ModelType.LLM,
  "text-embedding": ModelType.TEXT_EMBEDDING,
  text_embedding: ModelType.TEXT_EMBEDDING,
  rerank: ModelType.RERANK,
  speech2text: ModelType.SPEECH2TEXT,
  tts: ModelType.TTS,
  moderation: ModelType.MODERATION,
};

const EMBEDDING_INPUT_TYPES: Readonly<Record<"document" | "query", EmbeddingInputType>> = {
  document: EmbeddingInputType.DOCUMENT,
  query: EmbeddingInputType.QUERY,
};

const IMAGE_DETAILS: Readonly<Record<"low" | "high", ImageDetail>> = {
  low: ImageDetail.LOW,
  high: ImageDetail.HIGH,
};

const MEDIA_TYPES = new Set(["image", "audio", "video", "document"]);
const MESSAGE_KEYS = new Set(["role", "content", "name", "toolCalls", "toolCallId", "opaqueBody"]);
const MEDIA_KEYS = new Set([
  "type",
  "url",
  "base64Data",
  "data",
  "mimeType",
  "format",
  "filename",
  "detail",
]);
const TOOL_KEYS = new Set(["name", "description", "parameters"]);
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function lookup<T>(table: Readonly<Record<string, T>>, value: string, what: string): T {
  if (Object.hasOwn(table, value)) return table[value] as T;
  const allowed = Object.keys(table)
    .map((name) => JSON.stringify(name))
    .join(", ");
  throw new RangeError(`unknown ${what} ${JSON.stringify(value)}; expected one of ${allowed}`);
}

function checkKeys(data: object, allowed: ReadonlySet<string>, where: string): void {
  const unknown = Object.keys(data)
    .filter((key) => !allowed.has(key))
    .sort();
  if (unknown.length > 0) {
    const expected = [...allowed].sort().join(", ");
    throw new TypeError(
      `${where}: unknown key(s) ${unknown.join(", ")}; expected some of ${expected}`,
    );
  }
}

function optionalString(value: unknown, where: string): string {
  if (value === undefined || value === null) return "";
  if (typeof value !== "string")
    throw new TypeError(`${where} must be a string, not ${describe(value)}`);
  return value;
}

/** `"llm"`, `"text-embedding"`, ..., or a `ModelType` value. */
export function toModelType(value: ModelTypeInput): ModelType {
  return typeof value === "string" ? lookup(MODEL_TYPES, value, "model type") : value;
}

export function toEmbeddingInputType(
  value: EmbeddingInputTypeInput | undefined,
): EmbeddingInputType {
  if (value === undefined) return EmbeddingInputType.UNSPECIFIED;
  return typeof value === "string"
    ? lookup(EMBEDDING_INPUT_TYPES, value, "embedding input type")
    : value;
}

// google.protobuf.Struct fields are JSON objects in protobuf-es messages; check that the value is
// one (a Struct message is turned into one).
function toJsonObject(value: unknown, where: string): JsonObject {
  if (isMessage(value, StructSchema)) return toJson(StructSchema, value) as JsonObject;
  if (!isPlainObject(value))
    throw new TypeError(`${where} must be a JSON object, not ${describe(value)}`);
  try {
    fromJson(StructSchema, value as JsonObject);
  } catch (error) {
    throw new TypeError(`${where} must hold only JSON values: ${(error as Error).message}`);
  }
  return value as JsonObject;
}

/** A `ParameterValue` holding a float, for a parameter you want sent as float_value. */
export function floatValue(value: number): ParameterValue {
  return create(ParameterValueSchema, { kind: { case: "floatValue", value } });
}

/** A `ParameterValue` holding a 64-bit integer. */
export function intValue(value: number | bigint): ParameterValue {
  if (typeof value === "number" && !Number.isSafeInteger(value)) {
    throw new RangeError(`intValue: ${value} is not a safe integer; pass a bigint`);
  }
  const big = BigInt(value);
  if (big < INT64_MIN || big > INT64_MAX) {
    throw new RangeError(`intValue: ${big} does not fit in a 64-bit integer`);
  }
  return create(ParameterValueSchema, { kind: { case: "intValue", value: big } });
}

function toParameterValue(name: string, value: ParameterInput): ParameterValue {
  if (isMessage(value, ParameterValueSchema)) return value;
  const where = `model parameter ${JSON.stringify(name)}`;
  switch (typeof value) {
    case "boolean":
      return create(ParameterValueSchema, { kind: { case: "boolValue", value } });
    case "string":
      return create(ParameterValueSchema, { kind: { case: "stringValue", value } });
    case "bigint":
      try {
        return intValue(value);
      } catch {
        throw new RangeError(`${where}: ${value} does not fit in a 64-bit integer`);
      }
    case "number":
      return Number.isSafeInteger(value) ? intValue(value) : floatValue(value);
    default:
      throw new TypeError(
        `${where} must be a boolean, number, bigint or string, not ${describe(value)}`,
      );
  }
}

/** `{ temperature: 0.2, max_tokens: 100, stream: true, format: "json" }` -> the request's map. */
export function toModelParameters(
  parameters: Readonly<Record<string, ParameterInput>> | undefined,
): Record<string, ParameterValue> {
  if (parameters === undefined || parameters === null) return {};
  if (!isPlainObject(parameters)) {
    throw new TypeError(`modelParameters must be an object, not ${describe(parameters)}`);
  }
  const result: Record<string, ParameterValue> = {};
  for (const [name, value] of Object.entries(parameters)) {
    if (value === undefined) continue; // `{ temperature: maybe }` leaves it out, as JSON would
    result[name] = toParameterValue(name, value);
  }
  return result;
}

function toContentPart(part: ContentPartInput, where: string): PromptMessageContent {
  if (isMessage(part, PromptMessageContentSchema)) return part;
  if (typeof part === "string") {
    return create(PromptMessageContentSchema, { content: { case: "text", value: part } });
  }
  if (!isPlainObject(part))
    throw new TypeError(`${where} must be a string or an object, not ${describe(part)}`);
  const kind = part.type;
  if (kind === "text") {
    checkKeys(part, new Set(["type", "text"]), where);
    if (typeof part.text !== "string")
      throw new TypeError(`${where}: a text part needs 'text' as a string`);
    return create(PromptMessageContentSchema, { content: { case: "text", value: part.text } });
  }
  if (typeof kind !== "string" || !MEDIA_TYPES.has(kind)) {
    throw new TypeError(
      `${where}: 'type' must be one of text, image, audio, video, document, not ${JSON.stringify(kind)}`,
    );
  }
  checkKeys(part, MEDIA_KEYS, where);
  const sources = (["url", "base64Data", "data"] as const).filter(
    (key) => (part as Record<string, unknown>)[key] !== undefined,
  );
  if (sources.length !== 1)
    throw new TypeError(`${where}: give exactly one of url, base64Data or data`);
  const media: MediaContent = create(MediaContentSchema, {
    mimeType: optionalString(part.mimeType, `${where}.mimeType`),
    format: optionalString(part.format, `${where}.format`),
    filename: optionalString(part.filename, `${where}.filename`),
  });
  if (part.url !== undefined) {
    media.source = { case: "url", value: optionalString(part.url, `${where}.url`) };
  } else if (part.base64Data !== undefined) {
    media.source = {
      case: "base64Data",
      value: optionalString(part.base64Data, `${where}.base64Data`),
    };
  } else {
    if (!(part.data instanceof Uint8Array)) {
      throw new TypeError(
        `${where}.data must be a Uint8Array (or Buffer), not ${describe(part.data)}`,
      );
    }
    media.source = { case: "base64Data", value: base64Encode(part.data) };
  }
  if (part.detail !== undefined) {
    if (kind !== "image") throw new TypeError(`${where}: 'detail' applies to images only`);
    media.detail =
      typeof part.detail === "string"
        ? lookup(IMAGE_DETAILS, part.detail, "image detail")
        : part.detail;
  }
  return create(PromptMessageContentSchema, {
    content: { case: kind as "image" | "audio" | "video" | "document", value: media },
  });
}

function toToolCall(call: ToolCallInput, where: string): ToolCall {
  if (isMessage(call, ToolCallSchema)) return call;
  if (!isPlainObject(call))
    throw new TypeError(`${where} must be an object, not ${describe(call)}`);
  checkKeys(call, new Set(["id", "type", "function"]), where);
  const fn: unknown = call.function ?? {};
  if (!isPlainObject(fn))
    throw new TypeError(`${where}.function must be an object, not ${describe(fn)}`);
  checkKeys(fn, new Set(["name", "arguments"]), `${where}.function`);
  let args: unknown = fn.arguments ?? "";
  if (isPlainObject(args)) args = JSON.stringify(args);
  return create(ToolCallSchema, {
    id: optionalString(call.id, `${where}.id`),
    type: optionalString(call.type, `${where}.type`) || "function",
    function: {
      name: optionalString(fn.name, `${where}.function.name`),
      arguments: optionalString(args, `${where}.function.arguments`),
    },
  });
}

function toPromptMessage(message: PromptMessageInput, where: string): PromptMessage {
  if (isMessage(message, PromptMessageSchema)) return message;
  if (!isPlainObject(message)) {
    throw new TypeError(`${where} must be an object or a PromptMessage, not ${describe(message)}`);
  }
  checkKeys(message, MESSAGE_KEYS, where);
  if (message.role === undefined) throw new TypeError(`${where}: missing 'role'`);
  const result = create(PromptMessageSchema, {
    role: typeof message.role === "string" ? lookup(ROLES, message.role, "role") : message.role,
    name: optionalString(message.name, `${where}.name`),
    toolCallId: optionalString(message.toolCallId, `${where}.toolCallId`),
  });
  const content: unknown = message.content;
  if (typeof content === "string") {
    result.content = content;
  } else if (Array.isArray(content)) {
    result.contentParts = content.map((part: ContentPartInput, i) =>
      toContentPart(part, `${where}.content[${i}]`),
    );
  } else if (content !== undefined && content !== null) {
    throw new TypeError(
      `${where}.content must be a string or an array of parts, not ${describe(content)}`,
    );
  }
  const toolCalls: unknown = message.toolCalls ?? [];
  if (!Array.isArray(toolCalls)) throw new TypeError(`${where}.toolCalls must be an array`);
  result.toolCalls = toolCalls.map((call: ToolCallInput, i) =>
    toToolCall(call, `${where}.toolCalls[${i}]`),
  );
  if (message.opaqueBody !== undefined && message.opaqueBody !== null) {
    result.opaqueBody = toJsonObject(message.opaqueBody, `${where}.opaqueBody`);
  }
  return result;
}

/** A string (one user message) or an array of messages -> `PromptMessage[]`. */
export function toPromptMessages(messages: PromptMessagesInput): PromptMessage[] {
  if (typeof messages === "string") return [userMessage(messages)];
  if (!Array.isArray(messages)) {
    throw new TypeError(
      `promptMessages must be an array of messages (or a string), not ${describe(messages)}`,
    );
  }
  return messages.map((message: PromptMessageInput, i) =>
    toPromptMessage(message, `promptMessages[${i}]`),
  );
}

function toTool(tool: ToolInput, where: string): PromptMessageTool {
  if (isMessage(tool, PromptMessageToolSchema)) return tool;
  if (!isPlainObject(tool))
    throw new TypeError(`${where} must be an object, not ${describe(tool)}`);
  let spec: Record<string, unknown> = tool;
  if (tool.type === "function" && isPlainObject(tool.function)) {
    checkKeys(tool, new Set(["type", "function"]), where);
    spec = tool.function;
  }
  checkKeys(spec, TOOL_KEYS, where);
  const result = create(PromptMessageToolSchema, {
    name: optionalString(spec.name, `${where}.name`),
    description: optionalString(spec.description, `${where}.description`),
  });
  if (spec.parameters !== undefined && spec.parameters !== null) {
    result.parameters = toJsonObject(spec.parameters, `${where}.parameters`);
  }
  return result;
}

export function toTools(tools: readonly ToolInput[] | undefined): PromptMessageTool[] {
  if (tools === undefined || tools === null) return [];
  if (!Array.isArray(tools)) throw new TypeError(`tools must be an array, not ${describe(tools)}`);
  return tools.map((tool: ToolInput, i) => toTool(tool, `tools[${i}]`));
}

/** An array of strings, refusing a lone string (which would otherwise be split or rejected). */
export function toStrings(values: readonly string[] | undefined, what: string): string[] {
  if (values === undefined || values === null) return [];
  if (!Array.isArray(values))
    throw new TypeError(`${what} must be an array of strings, not ${describe(values)}`);
  values.forEach((value, i) => {
    if (typeof value !== "string")
      throw new TypeError(`${what}[${i}] must be a string, not ${describe(value)}`);
  });
  return [...values];
}

/** Credentials as a map of strings. */
export function toCredentials(
  credentials: Readonly<Record<string, string>> | undefined,
): Record<string, string> {
  if (credentials === undefined || credentials === null) return {};
  if (!isPlainObject(credentials))
    throw new TypeError(`credentials must be an object, not ${describe(credentials)}`);
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(credentials)) {
    if (typeof value !== "string") {
      throw new TypeError(`credentials.${key} must be a string, not ${describe(value)}`);
    }
    result[key] = value;
  }
  return result;
}

function message(
  role: PromptMessageRole,
  content: ContentInput,
  extra: Omit<Exclude<PromptMessageInput, PromptMessage>, "role" | "content"> = {},
): PromptMessage {
  return toPromptMessage({ role, content, ...extra }, "message");
}

export function systemMessage(
  content: ContentInput,
  options: { name?: string } = {},
): PromptMessage {
  return message(PromptMessageRole.SYSTEM, content, options);
}

export function developerMessage(
  content: ContentInput,
  options: { name?: string } = {},
): PromptMessage {
  return message(PromptMessageRole.DEVELOPER, content, options);
}

export function userMessage(content: ContentInput, options: { name?: string } = {}): PromptMessage {
  return message(PromptMessageRole.USER, content, options);
}

export function assistantMessage(
  content: ContentInput = "",
  options: {
    toolCalls?: readonly ToolCallInput[];
    opaqueBody?: JsonObject | Struct;
    name?: string;
  } = {},
): PromptMessage {
  return message(PromptMessageRole.ASSISTANT, content, options);
}

export function toolMessage(
  content: ContentInput,
  options: { toolCallId: string; name?: string },
): PromptMessage {
  return message(PromptMessageRole.TOOL, content, options);
}
