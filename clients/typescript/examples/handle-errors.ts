// Handle each kind of error: wait and retry after a rate limit (the server's RetryInfo says how
// long), get fresh credentials after an authorization error, fix the request after a bad
// request. The fake provider fails on demand, so each case really happens.
//
//   npm run build && node dist/examples/handle-errors.js

import {
  InvalidParameterError,
  InvokeAuthorizationError,
  InvokeBadRequestError,
  InvokeRateLimitError,
  ModelRuntimeClient,
  ModelRuntimeError,
  type LLMInput,
  type LLMResult,
} from "modelruntime-client";

const client = new ModelRuntimeClient(process.env.MODELRUNTIME_ADDRESS ?? "127.0.0.1:50051", {
  defaultTimeoutMs: 30_000,
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Stands in for your secret store.
async function refreshApiKey(): Promise<string> {
  return "fake-key";
}

async function ask(request: LLMInput, attempts = 3): Promise<LLMResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.invokeLLM(request);
    } catch (error) {
      if (!(error instanceof ModelRuntimeError) || attempt === attempts) throw error;
      if (error instanceof InvokeRateLimitError) {
        // The upstream said how long to wait; fall back to exponential backoff.
        const waitMs = error.retryAfterMs ?? 2 ** attempt * 1000;
        console.log(`  rate limited: waiting ${waitMs} ms (${error.message})`);
        await sleep(waitMs);
      } else if (error instanceof InvokeAuthorizationError) {
        // Retrying with the same key fails again: get a fresh one and try once more.
        console.log(`  refused credentials: refreshing the API key (${error.message})`);
        request = {
          ...request,
          credentials: { ...request.credentials, api_key: await refreshApiKey() },
        };
      } else if (error instanceof InvalidParameterError) {
        // The runtime names each offending parameter: here, drop them and try again. (In your
        // own code this is usually a bug to fix, so log it loudly.)
        const names = error.fieldViolations.map((v) => v.field.replace(/^model_parameters\./, ""));
        for (const v of error.fieldViolations)
          console.log(`  bad parameter ${v.field}: ${v.description}`);
        const parameters = Object.entries(request.modelParameters ?? {});
        request = {
          ...request,
          modelParameters: Object.fromEntries(parameters.filter(([name]) => !names.includes(name))),
        };
      } else if (error instanceof InvokeBadRequestError) {
        // The upstream rejected the request (for example a context too long): shorten it.
        console.log(`  bad request: keeping only the last message (${error.message})`);
        const messages = Array.isArray(request.promptMessages) ? request.promptMessages : [];
        request = { ...request, promptMessages: messages.slice(-1) };
      } else if (error.retryable) {
        await sleep(2 ** attempt * 100); // connection errors, server unavailable
      } else {
        throw error; // not found, internal, ...: retrying the same call will not help
      }
    }
  }
}

const base: LLMInput = {
  provider: "fake",
  model: "fake-chat",
  credentials: { api_key: "fake-key" },
  promptMessages: "Hello!",
};

console.log("authorization error -> fresh credentials:");
let result = await ask({ ...base, credentials: { api_key: "expired-key" } });
console.log(`  answer: ${result.message?.content}`);

console.log("invalid parameter -> fixed request:");
result = await ask({ ...base, modelParameters: { temperature: 0.3, temprature: 0.3 } });
console.log(`  answer: ${result.message?.content}`);

console.log("rate limit -> wait as told, retry, give up after 3 attempts:");
try {
  // The fake provider rate-limits every attempt here, so the retries run out.
  await ask({ ...base, modelParameters: { fail_with: "rate_limit", retry_after: 0.2 } });
} catch (error) {
  if (!(error instanceof InvokeRateLimitError)) throw error;
  console.log(`  gave up: ${error.reason}, retry after ${error.retryAfterMs} ms`);
}

console.log("a rate limit in the middle of a stream:");
const received: string[] = [];
try {
  const stream = client.streamLLM({
    ...base,
    modelParameters: {
      reply: "one two three four",
      fail_with: "rate_limit",
      fail_after_chunks: 2,
      retry_after: 2.5,
    },
  });
  for await (const chunk of stream) received.push(chunk.delta?.message?.content ?? "");
} catch (error) {
  if (!(error instanceof ModelRuntimeError)) throw error;
  // The chunks before the error were real output; whether to show or drop them is yours.
  console.log(`  after ${JSON.stringify(received.join(""))}: ${error.name}`);
  console.log(`  reason=${error.reason} code=${error.code} provider=${error.provider}`);
  console.log(
    `  model=${error.model} retryAfterMs=${error.retryAfterMs} retryable=${error.retryable}`,
  );
}
client.close();
