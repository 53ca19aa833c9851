// Stop a stream early: the server stops generating at once, and you stop paying for tokens
// nobody reads.
//
//   npm run build && node dist/examples/cancel-stream.js

import { CallCancelledError, ModelRuntimeClient } from "modelruntime-client";

const client = new ModelRuntimeClient(process.env.MODELRUNTIME_ADDRESS ?? "127.0.0.1:50051", {
  defaultTimeoutMs: 30_000,
});

const long = {
  provider: "fake",
  model: "fake-chat",
  credentials: { api_key: "fake-key" },
  promptMessages: "Count to a hundred",
  modelParameters: {
    reply: Array.from({ length: 100 }, (_, i) => i + 1).join(" "),
    chunk_delay_ms: 50,
  },
};

// 1. Leaving the loop (break, return, throw) cancels the call.
let text = "";
for await (const chunk of client.streamLLM(long)) {
  text += chunk.delta?.message?.content ?? "";
  if (text.length >= 10) break;
}
console.log(`break: stopped after ${JSON.stringify(text)}`);

// 2. From elsewhere (a "stop" button): cancel() makes the reading loop throw CallCancelledError.
const stream = client.streamLLM(long);
setTimeout(() => stream.cancel("the user pressed stop"), 300);
text = "";
try {
  for await (const chunk of stream) text += chunk.delta?.message?.content ?? "";
} catch (error) {
  if (!(error instanceof CallCancelledError)) throw error;
  console.log(`cancel(): ${error.message}, after ${JSON.stringify(text)}`);
}

// 3. An AbortSignal works for every call, streamed or not.
const controller = new AbortController();
setTimeout(() => controller.abort(), 300);
try {
  await client.invokeLLM(long, { signal: controller.signal });
} catch (error) {
  if (!(error instanceof CallCancelledError)) throw error;
  console.log(`AbortSignal: ${error.code}`);
}
client.close();
