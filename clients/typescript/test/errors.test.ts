// Decoding the grpc-status-details-bin trailer into typed errors (no server needed), and the
// reasons only the real server can produce.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { anyPack, type Any } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, encodeBinaryHeader } from "@connectrpc/connect";

import {
  BadRequestSchema,
  CallCancelledError,
  ErrorInfoSchema,
  ErrorReason,
  InternalError,
  InvalidArgumentError,
  InvalidCredentialsError,
  InvokeConnectionError,
  InvokeQuotaExceededError,
  InvokeRateLimitError,
  InvokeServerUnavailableError,
  InvokeTimeoutError,
  LimitExceededError,
  ModelRuntimeClient,
  ModelRuntimeError,
  OverloadedError,
  PermissionDeniedError,
  RetryInfoSchema,
  ShuttingDownError,
  StatusSchema,
  UnauthenticatedError,
  UnexpectedStatusError,
  UpstreamAddressForbiddenError,
  fromConnectError,
  reasonName,
} from "../src/index.js";
import { TestServer } from "./server.js";

function pack<Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>): Any {
  return anyPack(schema, create(schema, init));
}

function trailerError(
  code: Code,
  message: string,
  details: Any[],
  statusCode: number = code,
): ConnectError {
  const status = create(StatusSchema, { code: statusCode, message, details });
  const trailers = new Headers({
    "grpc-status-details-bin": encodeBinaryHeader(status, StatusSchema),
  });
  return new ConnectError(message, code, trailers);
}

function errorInfo(
  reason: string,
  metadata: Record<string, string> = {},
  domain = "modelruntime.v1",
) {
  return pack(ErrorInfoSchema, { reason, domain, metadata });
}

describe("fromConnectError", () => {
  it("decodes ErrorInfo, RetryInfo and BadRequest from the trailer", () => {
    const error = fromConnectError(
      trailerError(Code.InvalidArgument, "credentials.api_key: required", [
        errorInfo("INVALID_CREDENTIALS", { provider: "openai", model: "gpt-4o" }),
        pack(RetryInfoSchema, { retryDelay: { seconds: 1n, nanos: 250_000_000 } }),
        pack(BadRequestSchema, {
          fieldViolations: [
            { field: "credentials.api_key", description: "required" },
            { field: "credentials.org", description: "too long" },
          ],
        }),
      ]),
    );
    assert.ok(error instanceof InvalidCredentialsError);
    assert.ok(error instanceof InvalidArgumentError);
    assert.ok(error instanceof ModelRuntimeError);
    assert.ok(error instanceof Error);
    assert.equal(error.reason, "INVALID_CREDENTIALS");
    assert.equal(error.code, "INVALID_ARGUMENT");
    assert.equal(error.grpcCode, 3);
    assert.equal(error.provider, "openai");
    assert.equal(error.model, "gpt-4o");
    assert.deepEqual(error.metadata, { provider: "openai", model: "gpt-4o" });
    assert.equal(error.retryAfterMs, 1250);
    assert.deepEqual(error.fieldViolations, [
      { field: "credentials.api_key", description: "required" },
      { field: "credentials.org", description: "too long" },
    ]);
    // The violation the message already names is not repeated.
    assert.equal(
      error.message,
      "INVALID_CREDENTIALS (INVALID_ARGUMENT) [openai/gpt-4o]: credentials.api_key: required " +
        "(credentials.org: too long) (retry after 1.25s)",
    );
    assert.equal(error.rawMessage, "credentials.api_key: required");
    assert.ok(error.cause instanceof ConnectError);
  });

  it("has a class for every reason of the contract", () => {
    const names = Object.keys(ErrorReason).filter(
      (k) => Number.isNaN(Number(k)) && k !== "UNSPECIFIED",
    );
    assert.equal(names.length, 22);
    for (const name of names) {
      const error = fromConnectError(trailerError(Code.Internal, "x", [errorInfo(name)]));
      assert.equal(error.reason, name);
      assert.notEqual(error.constructor, ModelRuntimeError);
      assert.notEqual(error.constructor, UnexpectedStatusError, name);
      assert.equal(error.name, error.constructor.name);
    }
    assert.equal(reasonName(ErrorReason.INVOKE_RATE_LIMIT), "INVOKE_RATE_LIMIT");
    const unavailable = fromConnectError(
      trailerError(Code.Unavailable, "x", [errorInfo("INVOKE_SERVER_UNAVAILABLE")]),
    );
    assert.ok(unavailable instanceof InvokeServerUnavailableError);
    assert.equal(unavailable.retryable, true);
  });

  it("tells which of the security and load reasons may be retried", () => {
    const decode = (code: Code, reason: string, metadata: Record<string, string> = {}) =>
      fromConnectError(trailerError(code, "x", [errorInfo(reason, metadata)]));
    const overloaded = decode(Code.ResourceExhausted, "OVERLOADED");
    assert.ok(overloaded instanceof OverloadedError && overloaded.retryable);
    const draining = decode(Code.Unavailable, "SHUTTING_DOWN");
    assert.ok(draining instanceof ShuttingDownError && draining.retryable);
    const forbidden = decode(Code.PermissionDenied, "UPSTREAM_ADDRESS_FORBIDDEN");
    assert.ok(forbidden instanceof UpstreamAddressForbiddenError);
    assert.ok(forbidden instanceof PermissionDeniedError);
    assert.equal(forbidden.retryable, false);
    const limit = decode(Code.InvalidArgument, "LIMIT_EXCEEDED", {
      limit: "max_prompt_messages",
      limit_value: "100",
    });
    assert.ok(limit instanceof LimitExceededError && limit instanceof InvalidArgumentError);
    assert.equal(limit.limit, "max_prompt_messages");
    assert.equal(limit.limitValue, 100);
    assert.equal(limit.retryable, false);
  });

  it("classifies by code a status without details, an unknown reason or another domain", () => {
    const cases: [ConnectError, new (...args: never[]) => ModelRuntimeError][] = [
      [new ConnectError("gone", Code.Unavailable), InvokeConnectionError],
      [new ConnectError("late", Code.DeadlineExceeded), InvokeTimeoutError],
      [new ConnectError("who", Code.Unauthenticated), UnauthenticatedError],
      // A mesh's authorization policy (Istio, Envoy RBAC) refuses this way.
      [new ConnectError("RBAC: access denied", Code.PermissionDenied), PermissionDeniedError],
      [new ConnectError("stop", Code.Canceled), CallCancelledError],
      [new ConnectError("bug", Code.Unknown), InternalError],
      // RESOURCE_EXHAUSTED without details is a message over the size limit, not a rate limit.
      [new ConnectError("too big", Code.ResourceExhausted), UnexpectedStatusError],
      [trailerError(Code.Unavailable, "x", [errorInfo("SOMETHING_NEW")]), InvokeConnectionError],
      [
        trailerError(Code.Internal, "x", [errorInfo("INVOKE_RATE_LIMIT", {}, "other.example")]),
        InternalError,
      ],
    ];
    for (const [connectError, type] of cases) {
      const error = fromConnectError(connectError);
      assert.ok(error instanceof type, `${connectError.message}: got ${error.name}`);
    }
    assert.equal(fromConnectError(new ConnectError("x", Code.Unavailable)).reason, "");
  });

  it("ignores details whose status code contradicts the call's", () => {
    const error = fromConnectError(
      trailerError(
        Code.Unavailable,
        "rewritten",
        [errorInfo("INVOKE_RATE_LIMIT")],
        Code.ResourceExhausted,
      ),
    );
    assert.ok(error instanceof InvokeConnectionError);
    assert.equal(error.reason, "");
    assert.equal(error.status, undefined);
  });

  it("ignores a trailer that does not parse", () => {
    const trailers = new Headers({ "grpc-status-details-bin": "bm90IGEgc3RhdHVz!!" });
    const error = fromConnectError(new ConnectError("x", Code.Internal, trailers));
    assert.ok(error instanceof InternalError);
    assert.equal(error.reason, "");
  });

  it("classifies anything else that was thrown, and leaves its own errors alone", () => {
    const aborted = new Error("This operation was aborted");
    aborted.name = "AbortError";
    assert.ok(fromConnectError(aborted) instanceof CallCancelledError);
    assert.ok(fromConnectError(new TypeError("boom")) instanceof InternalError);
    const own = new InternalError({ rawMessage: "x" });
    assert.equal(fromConnectError(own), own);
  });
});

describe("reasons from the real server", () => {
  let server: TestServer;
  let client: ModelRuntimeClient;

  before(async () => {
    server = await TestServer.start();
    client = new ModelRuntimeClient(server.address, { defaultTimeoutMs: 10_000 });
  });

  after(async () => {
    client?.close();
    await server?.stop();
  });

  it("a spent quota is a rate limit that must not be retried", { timeout: 20_000 }, async () => {
    const error: unknown = await client
      .invokeLLM({
        provider: "fake",
        model: "fake-chat",
        credentials: { api_key: "fake-key" },
        promptMessages: [{ role: "user", content: "hi" }],
        modelParameters: { fail_with: "quota", retry_after: 2.5 },
      })
      .then(
        () => assert.fail("the call succeeded"),
        (e: unknown) => e,
      );
    // Code written before the reason existed still catches it as a rate limit...
    assert.ok(error instanceof InvokeRateLimitError, String(error));
    // ...and learns from `retryable` that waiting will not help.
    assert.ok(error instanceof InvokeQuotaExceededError);
    assert.equal(error.reason, "INVOKE_QUOTA_EXCEEDED");
    assert.equal(error.code, "RESOURCE_EXHAUSTED");
    assert.equal(error.retryable, false);
    assert.equal(error.retryAfterMs, undefined);
    assert.equal(error.provider, "fake");
    assert.equal(error.model, "fake-chat");
  });
});
