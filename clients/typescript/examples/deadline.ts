// Give every call a deadline: a call without one can wait forever on a stuck upstream.
//
//   npm run build && node dist/examples/deadline.js

import { InvokeTimeoutError, ModelRuntimeClient } from "modelruntime-client";

// A default for every call of this client...
const client = new ModelRuntimeClient(process.env.MODELRUNTIME_ADDRESS ?? "127.0.0.1:50051", {
  defaultTimeoutMs: 30_000,
});

const slow = {
  provider: "fake",
  model: "fake-chat",
  credentials: { api_key: "fake-key" },
  promptMessages: "Tell me a long story",
  // 20 words, 100 ms apart: about two seconds.
  modelParameters: { reply: "word ".repeat(20).trim(), chunk_delay_ms: 100 },
};

// ...and a deadline for one call. It travels to the server, which stops the upstream call too.
let started = Date.now();
try {
  await client.invokeLLM(slow, { timeoutMs: 500 });
} catch (error) {
  if (!(error instanceof InvokeTimeoutError)) throw error;
  console.log(`unary call: ${error.message} (after ${Date.now() - started} ms)`);
}

// For a stream the deadline covers the whole stream, not each chunk.
started = Date.now();
let chunks = 0;
try {
  for await (const _chunk of client.streamLLM(slow, { timeoutMs: 800 })) chunks++;
} catch (error) {
  if (!(error instanceof InvokeTimeoutError)) throw error;
  console.log(`stream: ${chunks} chunks, then ${error.code} (after ${Date.now() - started} ms)`);
}

// timeoutMs: null means no deadline for this call, whatever the client's default.
const result = await client.invokeLLM(
  { ...slow, modelParameters: { reply: "done" } },
  { timeoutMs: null },
);
console.log(`no deadline: ${result.message?.content}`);
client.close();
