// Stream a chat: print the answer as it arrives, then the assembled tool calls and the usage.
//
//   npm run build && node dist/examples/stream-chat.js        (server on 127.0.0.1:50051)
//   MODELRUNTIME_ADDRESS=host:port node dist/examples/stream-chat.js

import { ModelRuntimeClient, StreamAccumulator } from "modelruntime-client";

const client = new ModelRuntimeClient(process.env.MODELRUNTIME_ADDRESS ?? "127.0.0.1:50051", {
  defaultTimeoutMs: 60_000,
});

const answer = new StreamAccumulator();
const stream = client.streamLLM({
  provider: "fake",
  model: "fake-chat",
  credentials: { api_key: "fake-key" },
  promptMessages: [
    { role: "system", content: "Answer in one sentence." },
    { role: "user", content: "What is the weather in Paris?" },
  ],
  modelParameters: {
    temperature: 0.2,
    // The fake provider's script: the text to stream, one word per chunk, and a tool call.
    reply: "Let me look that up.",
    tool_calls: JSON.stringify([{ name: "get_weather", arguments: { city: "Paris" } }]),
    chunk_delay_ms: 50,
  },
  tools: [
    {
      name: "get_weather",
      description: "The current weather in a city",
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
    },
  ],
});

for await (const chunk of stream) {
  process.stdout.write(chunk.delta?.message?.content ?? "");
  answer.add(chunk);
}
process.stdout.write("\n");

const result = answer.result(); // the same LLMResult that invokeLLM returns
for (const call of result.message?.toolCalls ?? []) {
  console.log(`tool call ${call.id}: ${call.function?.name}(${call.function?.arguments})`);
}
const usage = result.usage;
console.log(
  `finish reason: ${result.finishReason}; tokens: ${usage?.totalTokens}; ` +
    `price: ${usage?.totalPrice} ${usage?.currency}`,
);
client.close();
