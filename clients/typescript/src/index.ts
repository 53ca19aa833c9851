// modelruntime-client: the TypeScript/Node client of the modelruntime gRPC service.
//
// `ModelRuntimeClient` and its typed errors, the converters from plain values, the stream
// accumulator, and every message, enum and service descriptor generated from the contract
// (`protos/modelruntime/v1`) and from `google/rpc` (the error details).

export {
  AudioStream,
  DEFAULT_ADDRESS,
  LLMStream,
  ModelRuntimeClient,
  type CallOptions,
  type HeadersInit,
  type ClientOptions,
  type GetLLMNumTokensInput,
  type GetTextEmbeddingNumTokensInput,
  type InvokeModerationInput,
  type InvokeRerankInput,
  type InvokeSpeech2TextInput,
  type InvokeTTSInput,
  type InvokeTextEmbeddingInput,
  type LLMInput,
} from "./client.js";
export {
  assistantMessage,
  developerMessage,
  floatValue,
  intValue,
  systemMessage,
  toModelParameters,
  toModelType,
  toPromptMessages,
  toTools,
  toolMessage,
  userMessage,
  type ContentInput,
  type ContentPartInput,
  type EmbeddingInputTypeInput,
  type ModelTypeInput,
  type ModelTypeName,
  type ParameterInput,
  type PromptMessageInput,
  type PromptMessagesInput,
  type RoleName,
  type ToolCallInput,
  type ToolInput,
  type ToolSpec,
} from "./convert.js";
export { StreamAccumulator, collect } from "./accumulator.js";
export {
  CallCancelledError,
  CredentialSetNotFoundError,
  CredentialsValidateFailedError,
  ERROR_DOMAIN,
  InternalError,
  InvalidArgumentError,
  InvalidCredentialsError,
  InvalidParameterError,
  InvalidRequestError,
  InvokeAuthorizationError,
  InvokeBadRequestError,
  InvokeConnectionError,
  InvokeError,
  InvokeQuotaExceededError,
  InvokeRateLimitError,
  InvokeServerUnavailableError,
  InvokeTimeoutError,
  LimitExceededError,
  ModelNotFoundError,
  ModelRuntimeError,
  ModelTypeNotSupportedError,
  NotFoundError,
  OverloadedError,
  PermissionDeniedError,
  ProviderNotFoundError,
  STATUS_DETAILS_TRAILER,
  ShuttingDownError,
  UnauthenticatedError,
  UnexpectedStatusError,
  UpstreamAddressForbiddenError,
  fromConnectError,
  reasonName,
  type ErrorReasonName,
  type FieldViolation,
  type ModelRuntimeErrorInit,
  type StatusCodeName,
} from "./errors.js";

export * from "./gen/modelruntime/v1/error_reason_pb.js";
export * from "./gen/modelruntime/v1/llm_pb.js";
export * from "./gen/modelruntime/v1/model_runtime_service_pb.js";
export * from "./gen/modelruntime/v1/schema_pb.js";
export * from "./gen/modelruntime/v1/value_pb.js";
export * from "./gen/google/rpc/error_details_pb.js";
export * from "./gen/google/rpc/status_pb.js";
