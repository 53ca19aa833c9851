// Typed errors for every failure the modelruntime service reports.
//
// The class tree follows the `ErrorReason` enum of the contract (the Invoke* names are Dify's):
//
//   ModelRuntimeError
//   ├── InvokeError                        the upstream model call failed
//   │   ├── InvokeConnectionError          UNAVAILABLE         retryable
//   │   ├── InvokeServerUnavailableError   UNAVAILABLE         retryable
//   │   ├── InvokeRateLimitError           RESOURCE_EXHAUSTED  retryable (see retryAfterMs)
//   │   │   └── InvokeQuotaExceededError   RESOURCE_EXHAUSTED  the quota is spent: NOT retryable
//   │   ├── InvokeAuthorizationError       PERMISSION_DENIED
//   │   ├── InvokeBadRequestError          INVALID_ARGUMENT
//   │   └── InvokeTimeoutError             DEADLINE_EXCEEDED
//   ├── CredentialsValidateFailedError     FAILED_PRECONDITION
//   ├── NotFoundError                      NOT_FOUND
//   │   ├── ProviderNotFoundError
//   │   ├── ModelNotFoundError
//   │   ├── ModelTypeNotSupportedError
//   │   └── CredentialSetNotFoundError     no server-side credential set of that name
//   ├── InvalidArgumentError               INVALID_ARGUMENT    (see fieldViolations)
//   │   ├── InvalidParameterError
//   │   ├── InvalidCredentialsError
//   │   ├── InvalidRequestError
//   │   └── LimitExceededError             over a limit of the server (see limit, limitValue)
//   ├── InternalError                      INTERNAL
//   ├── UnauthenticatedError               UNAUTHENTICATED     the runtime refused *your* API key
//   ├── PermissionDeniedError              PERMISSION_DENIED   your key may not make this call
//   │   └── UpstreamAddressForbiddenError  the server may not reach the upstream URL you gave
//   ├── OverloadedError                    RESOURCE_EXHAUSTED  retryable: the server sheds load
//   ├── ShuttingDownError                  UNAVAILABLE         retryable on another replica
//   ├── CallCancelledError                 CANCELLED
//   └── UnexpectedStatusError              any other status
//
// The details come from the `grpc-status-details-bin` trailer: a binary `google.rpc.Status`
// whose details hold an `ErrorInfo` (reason, domain, metadata with provider and model), and
// where they apply a `RetryInfo` and a `BadRequest`. They are decoded with the generated
// google.rpc messages (src/gen/google/rpc). A status whose reason this client does not know (a
// newer server), or that has no details at all (the transport itself, a proxy, a dead server),
// is classified by its gRPC code, as the contract asks; its `reason` is "".

import { anyPack, anyUnpack, type Any } from "@bufbuild/protobuf/wkt";
import { create, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, decodeBinaryHeader } from "@connectrpc/connect";

import {
  BadRequestSchema,
  ErrorInfoSchema,
  RetryInfoSchema,
  type ErrorInfo,
} from "./gen/google/rpc/error_details_pb.js";
import { StatusSchema, type Status } from "./gen/google/rpc/status_pb.js";
import { ErrorReason } from "./gen/modelruntime/v1/error_reason_pb.js";

/** The `ErrorInfo.domain` of every status the runtime sends. */
export const ERROR_DOMAIN = "modelruntime.v1";

/** The trailer that carries the binary `google.rpc.Status`. */
export const STATUS_DETAILS_TRAILER = "grpc-status-details-bin";

/** The reasons of the contract: `ErrorReason` value names without the `ERROR_REASON_` prefix. */
export type ErrorReasonName = Exclude<keyof typeof ErrorReason, "UNSPECIFIED">;

/** gRPC status code names, as in the gRPC spec (the number is `grpcCode`). */
export type StatusCodeName =
  | "OK"
  | "CANCELLED"
  | "UNKNOWN"
  | "INVALID_ARGUMENT"
  | "DEADLINE_EXCEEDED"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "PERMISSION_DENIED"
  | "RESOURCE_EXHAUSTED"
  | "FAILED_PRECONDITION"
  | "ABORTED"
  | "OUT_OF_RANGE"
  | "UNIMPLEMENTED"
  | "INTERNAL"
  | "UNAVAILABLE"
  | "DATA_LOSS"
  | "UNAUTHENTICATED";

const CODE_NAMES: readonly StatusCodeName[] = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

/** One field of the request at fault, from the status's `google.rpc.BadRequest` detail. */
export interface FieldViolation {
  /** A path such as `model_parameters.temperature` or `credentials.api_key`. */
  readonly field: string;
  readonly description: string;
}

/** What a `ModelRuntimeError` is made of; see the properties of the same names. */
export interface ModelRuntimeErrorInit {
  rawMessage?: string;
  code?: StatusCodeName;
  reason?: string;
  domain?: string;
  provider?: string;
  model?: string;
  retryAfterMs?: number;
  fieldViolations?: readonly FieldViolation[];
  metadata?: Readonly<Record<string, string>>;
  status?: Status;
  trailers?: Headers;
  cause?: unknown;
}

/**
 * A call to the modelruntime service failed.
 *
 * Catch it to handle every failure; test for a subclass (or switch on `reason`) to act on one
 * cause:
 *
 * ```ts
 * try {
 *   await client.invokeLLM(request);
 * } catch (err) {
 *   if (err instanceof InvokeRateLimitError) await sleep(err.retryAfterMs ?? 1000);
 *   else throw err;
 * }
 * ```
 */
export class ModelRuntimeError extends Error {
  /** The gRPC status code's name, for example `RESOURCE_EXHAUSTED`. */
  readonly code: StatusCodeName;
  /** The `ErrorInfo` reason such as `INVOKE_RATE_LIMIT`; "" when the status had none. */
  readonly reason: ErrorReasonName | "" | (string & {});
  /** The `ErrorInfo` domain: `modelruntime.v1` for the runtime's errors. */
  readonly domain: string;
  /** The server's own message, without the prefix `message` adds. */
  readonly rawMessage: string;
  /** The provider the call named (from `ErrorInfo.metadata`), if any. */
  readonly provider: string | undefined;
  /** The model the call named (from `ErrorInfo.metadata`), if any. */
  readonly model: string | undefined;
  /** How long to wait before retrying, from `RetryInfo`, in milliseconds; undefined without one. */
  readonly retryAfterMs: number | undefined;
  /** The fields at fault, from `BadRequest`. */
  readonly fieldViolations: readonly FieldViolation[];
  /** The whole `ErrorInfo.metadata`. */
  readonly metadata: Readonly<Record<string, string>>;
  /** The decoded `google.rpc.Status` from the `grpc-status-details-bin` trailer, if any. */
  readonly status: Status | undefined;
  /** The response's headers and trailers. */
  readonly trailers: Headers;

  constructor(init: ModelRuntimeErrorInit = {}) {
    super("", init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code ?? "UNKNOWN";
    this.reason = init.reason ?? "";
    this.domain = init.domain ?? "";
    this.rawMessage = init.rawMessage ?? "";
    this.provider = init.provider || undefined;
    this.model = init.model || undefined;
    this.retryAfterMs = init.retryAfterMs;
    this.fieldViolations = init.fieldViolations ?? [];
    this.metadata = init.metadata ?? {};
    this.status = init.status;
    this.trailers = init.trailers ?? new Headers();
    this.name = new.target.name;
    this.message = this.describe();
  }

  /** The gRPC status code's number (8 for RESOURCE_EXHAUSTED). */
  get grpcCode(): number {
    return CODE_NAMES.indexOf(this.code);
  }

  /** `retryAfterMs` in seconds, as `RetryInfo` gives it. */
  get retryAfterSeconds(): number | undefined {
    return this.retryAfterMs === undefined ? undefined : this.retryAfterMs / 1000;
  }

  /** Whether the same call may succeed if sent again later, unchanged. */
  get retryable(): boolean {
    return false;
  }

  /** `INVOKE_RATE_LIMIT (RESOURCE_EXHAUSTED) [fake/fake-chat]: ... (retry after 2.5s)`. */
  private describe(): string {
    let text = this.reason ? `${this.reason} (${this.code})` : this.code;
    const target = [this.provider, this.model].filter(Boolean).join("/");
    if (target) text += ` [${target}]`;
    text += `: ${this.rawMessage}`;
    // Servers often spell the violations out in the message already; don't repeat them.
    const unmentioned = this.fieldViolations.filter((v) => !this.rawMessage.includes(v.field));
    if (unmentioned.length > 0) {
      text += ` (${unmentioned.map((v) => `${v.field}: ${v.description}`).join("; ")})`;
    }
    if (this.retryAfterSeconds !== undefined) text += ` (retry after ${this.retryAfterSeconds}s)`;
    return text;
  }
}

/** The upstream model call failed. */
export class InvokeError extends ModelRuntimeError {}

/** The upstream, or the runtime itself, could not be reached. */
export class InvokeConnectionError extends InvokeError {
  override get retryable(): boolean {
    return true;
  }
}

/** The upstream answered that it cannot serve now. */
export class InvokeServerUnavailableError extends InvokeError {
  override get retryable(): boolean {
    return true;
  }
}

/** The upstream rate-limited the credentials; wait `retryAfterMs` when it is set. */
export class InvokeRateLimitError extends InvokeError {
  override get retryable(): boolean {
    return true;
  }
}

/**
 * The credentials' quota, credit or spend limit at the upstream is used up. A subclass of
 * `InvokeRateLimitError`, so code written before this reason existed still catches it, but
 * waiting will not help (`retryable` is false, and there is never a `retryAfterMs`).
 */
export class InvokeQuotaExceededError extends InvokeRateLimitError {
  override get retryable(): boolean {
    return false;
  }
}

/** The upstream refused the credentials; retrying with the same ones fails again. */
export class InvokeAuthorizationError extends InvokeError {}

/** The upstream rejected the request; change it before retrying. */
export class InvokeBadRequestError extends InvokeError {}

/** The call did not finish within its deadline. */
export class InvokeTimeoutError extends InvokeError {}

/** The credentials were checked against the upstream and do not work. */
export class CredentialsValidateFailedError extends ModelRuntimeError {}

/** The provider, model or model type does not exist. */
export class NotFoundError extends ModelRuntimeError {}

/** No provider of that name is loaded. */
export class ProviderNotFoundError extends NotFoundError {}

/** The provider has no such model of the requested type. */
export class ModelNotFoundError extends NotFoundError {}

/** The provider does not offer the requested model type. */
export class ModelTypeNotSupportedError extends NotFoundError {}

/** The request named a server-side credential set the server does not have. */
export class CredentialSetNotFoundError extends NotFoundError {
  /** The name asked for. */
  get credentialSet(): string {
    return this.metadata.credential_set ?? "";
  }
}

/** The request broke a rule; `fieldViolations` names the fields at fault. */
export class InvalidArgumentError extends ModelRuntimeError {}

/** A model parameter broke the model's parameter rules. */
export class InvalidParameterError extends InvalidArgumentError {}

/** The credentials do not fit the provider's credential form. */
export class InvalidCredentialsError extends InvalidArgumentError {}

/** The request is malformed before any provider sees it. */
export class InvalidRequestError extends InvalidArgumentError {}

/**
 * The request is over a limit the server is configured with; nothing was sent upstream.
 * `fieldViolations` names the field; `limit` and `limitValue` name the limit.
 */
export class LimitExceededError extends InvalidArgumentError {
  /** The limit's config name, for example `max_prompt_messages`. */
  get limit(): string {
    return this.metadata.limit ?? "";
  }

  /** The limit's value, when the server said. */
  get limitValue(): number | undefined {
    const value = this.metadata.limit_value;
    return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
  }
}

/** A fault inside the runtime or a provider implementation; please report it. */
export class InternalError extends ModelRuntimeError {}

/**
 * The runtime (or the mesh in front of it) did not accept the caller's own authentication: the
 * `authorization: Bearer <key>` header is missing or holds an unknown key.
 */
export class UnauthenticatedError extends ModelRuntimeError {}

/**
 * The caller's own API key may not make this call (this provider, model or credential set), or
 * the mesh's authorization policy refused it. Not the upstream's refusal of the provider
 * credentials: that is `InvokeAuthorizationError`.
 */
export class PermissionDeniedError extends ModelRuntimeError {}

/**
 * An upstream URL the caller supplied (a customizable model's `server_url`) resolves to an
 * address the server's outbound allow-list forbids; nothing was sent.
 */
export class UpstreamAddressForbiddenError extends PermissionDeniedError {}

/** The server is at its cap of concurrent calls and refused this one at once; retry later. */
export class OverloadedError extends ModelRuntimeError {
  override get retryable(): boolean {
    return true;
  }
}

/** The server is draining before it stops; another replica can take the call. */
export class ShuttingDownError extends ModelRuntimeError {
  override get retryable(): boolean {
    return true;
  }
}

/** The call was cancelled before it finished: by this process (an AbortSignal, `cancel()`) or by the server. */
export class CallCancelledError extends ModelRuntimeError {}

/** A status the contract does not describe; act on `code`. */
export class UnexpectedStatusError extends ModelRuntimeError {}

type ErrorClass = new (init: ModelRuntimeErrorInit) => ModelRuntimeError;

const CLASS_BY_REASON: Readonly<Record<ErrorReasonName, ErrorClass>> = {
  INVOKE_CONNECTION_ERROR: InvokeConnectionError,
  INVOKE_SERVER_UNAVAILABLE: InvokeServerUnavailableError,
  INVOKE_RATE_LIMIT: InvokeRateLimitError,
  INVOKE_AUTHORIZATION: InvokeAuthorizationError,
  INVOKE_BAD_REQUEST: InvokeBadRequestError,
  INVOKE_TIMEOUT: InvokeTimeoutError,
  CREDENTIALS_VALIDATE_FAILED: CredentialsValidateFailedError,
  PROVIDER_NOT_FOUND: ProviderNotFoundError,
  MODEL_NOT_FOUND: ModelNotFoundError,
  MODEL_TYPE_NOT_SUPPORTED: ModelTypeNotSupportedError,
  INVALID_PARAMETER: InvalidParameterError,
  INVALID_CREDENTIALS: InvalidCredentialsError,
  INVALID_REQUEST: InvalidRequestError,
  INTERNAL: InternalError,
  INVOKE_QUOTA_EXCEEDED: InvokeQuotaExceededError,
  UNAUTHENTICATED: UnauthenticatedError,
  PERMISSION_DENIED: PermissionDeniedError,
  LIMIT_EXCEEDED: LimitExceededError,
  OVERLOADED: OverloadedError,
  UPSTREAM_ADDRESS_FORBIDDEN: UpstreamAddressForbiddenError,
  CREDENTIAL_SET_NOT_FOUND: CredentialSetNotFoundError,
  SHUTTING_DOWN: ShuttingDownError,
};

const CLASS_BY_CODE: Partial<Record<StatusCodeName, ErrorClass>> = {
  UNAVAILABLE: InvokeConnectionError,
  DEADLINE_EXCEEDED: InvokeTimeoutError,
  NOT_FOUND: NotFoundError,
  INVALID_ARGUMENT: InvalidArgumentError,
  INTERNAL: InternalError,
  UNKNOWN: InternalError,
  DATA_LOSS: InternalError,
  UNAUTHENTICATED: UnauthenticatedError,
  PERMISSION_DENIED: PermissionDeniedError,
  CANCELLED: CallCancelledError,
};

/** The `ErrorInfo.reason` string the server sends for an `ErrorReason` value. */
export function reasonName(value: ErrorReason): string {
  return ErrorReason[value] ?? "";
}

// The rich status: from the trailer when the transport kept it (the gRPC protocol always does),
// else rebuilt from the details the transport already parsed. A status whose code contradicts
// the call's (something between us and the server rewrote it) or that does not parse is treated
// as having no details: they no longer describe the error we got.
function richStatus(error: ConnectError): Status | undefined {
  let status: Status | undefined;
  const trailer = error.metadata.get(STATUS_DETAILS_TRAILER);
  if (trailer !== null) {
    try {
      status = decodeBinaryHeader(trailer, StatusSchema);
    } catch {
      return undefined;
    }
  } else if (error.details.length > 0) {
    status = create(StatusSchema, {
      code: error.code,
      message: error.rawMessage,
      details: error.details.map((detail) =>
        "desc" in detail
          ? anyPack(detail.desc, create(detail.desc, detail.value))
          : { typeUrl: `type.googleapis.com/${detail.type}`, value: detail.value },
      ),
    });
  }
  if (status === undefined || status.code !== error.code) return undefined;
  return status;
}

function unpack<Desc extends DescMessage>(any: Any, schema: Desc): MessageShape<Desc> | undefined {
  try {
    return anyUnpack(any, schema);
  } catch {
    return undefined; // a detail that does not parse is left out
  }
}

/**
 * Translate an error from a call (a `ConnectError`) into its typed `ModelRuntimeError`.
 *
 * Returns the error unchanged when it already is a `ModelRuntimeError`; anything that is not a
 * `ConnectError` becomes one first (`ConnectError.from`), so an abort reason or a network error
 * is classified too. Works for errors of a raw Connect client of the generated service.
 */
export function fromConnectError(error: unknown): ModelRuntimeError {
  if (error instanceof ModelRuntimeError) return error;
  const connectError = ConnectError.from(error, Code.Unknown);
  const code = CODE_NAMES[connectError.code] ?? "UNKNOWN";
  const status = richStatus(connectError);

  let errorInfo: ErrorInfo | undefined;
  let retryAfterMs: number | undefined;
  const fieldViolations: FieldViolation[] = [];
  for (const detail of status?.details ?? []) {
    const info = unpack(detail, ErrorInfoSchema);
    if (info !== undefined) {
      errorInfo ??= info; // the first one counts
      continue;
    }
    const retryInfo = unpack(detail, RetryInfoSchema);
    if (retryInfo !== undefined) {
      const delay = retryInfo.retryDelay;
      retryAfterMs = delay === undefined ? 0 : Number(delay.seconds) * 1000 + delay.nanos / 1e6;
      continue;
    }
    const badRequest = unpack(detail, BadRequestSchema);
    if (badRequest !== undefined) {
      for (const v of badRequest.fieldViolations) {
        fieldViolations.push({ field: v.field, description: v.description });
      }
    }
  }

  const reason = errorInfo?.reason ?? "";
  const domain = errorInfo?.domain ?? "";
  const metadata = { ...(errorInfo?.metadata ?? {}) };
  const cls =
    (domain === ERROR_DOMAIN && Object.hasOwn(CLASS_BY_REASON, reason)
      ? CLASS_BY_REASON[reason as ErrorReasonName]
      : undefined) ??
    CLASS_BY_CODE[code] ??
    UnexpectedStatusError;
  return new cls({
    rawMessage: status?.message ?? connectError.rawMessage,
    code,
    reason,
    domain,
    provider: metadata.provider,
    model: metadata.model,
    retryAfterMs,
    fieldViolations,
    metadata,
    status,
    trailers: connectError.metadata,
    cause: error,
  });
}
