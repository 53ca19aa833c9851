// The examples run against the real server and print what they promise.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { TestServer } from "./server.js";

const run = promisify(execFile);
const EXAMPLES = join(dirname(fileURLToPath(import.meta.url)), "..", "examples");
const TEST = { timeout: 30_000 };

describe("examples", () => {
  let server: TestServer;

  before(async () => {
    server = await TestServer.start();
  });

  after(async () => {
    assert.equal(await server?.stop(), 0);
  });

  async function example(name: string): Promise<string> {
    const { stdout } = await run(process.execPath, [join(EXAMPLES, `${name}.js`)], {
      env: { ...process.env, MODELRUNTIME_ADDRESS: server.address },
      timeout: 20_000,
    });
    return stdout;
  }

  it("stream-chat streams the answer, then the tool call and the usage", TEST, async () => {
    const out = await example("stream-chat");
    assert.match(out, /^Let me look that up\.\n/);
    assert.match(out, /tool call call_fake_0: get_weather\(\{"city":"Paris"\}\)/);
    assert.match(out, /finish reason: tool_calls; tokens: \d+; price: [\d.]+ USD/);
  });

  it("handle-errors recovers from each error it can, and gives up on the rest", TEST, async () => {
    const out = await example("handle-errors");
    assert.match(out, /refused credentials: refreshing the API key/);
    assert.match(out, /bad parameter model_parameters\.temprature/);
    assert.equal(out.match(/answer: Hello!/g)?.length, 2);
    assert.equal(out.match(/rate limited: waiting 200 ms/g)?.length, 2);
    assert.match(out, /gave up: INVOKE_RATE_LIMIT, retry after 200 ms/);
    assert.match(out, /after "one two ": InvokeRateLimitError/);
    assert.match(out, /model=fake-chat retryAfterMs=2500 retryable=true/);
  });

  it("deadline times out a call and a stream, and runs one without a deadline", TEST, async () => {
    const out = await example("deadline");
    // The server's INVOKE_TIMEOUT or the client's own timer, whichever comes first.
    assert.match(out, /unary call: (INVOKE_TIMEOUT \()?DEADLINE_EXCEEDED/);
    assert.match(out, /stream: \d+ chunks, then DEADLINE_EXCEEDED/);
    assert.match(out, /no deadline: done/);
  });

  it("cancel-stream stops streams by break, cancel() and AbortSignal", TEST, async () => {
    const out = await example("cancel-stream");
    assert.match(out, /break: stopped after "1 2 3 4 5 "/);
    assert.match(out, /cancel\(\): CANCELLED: the user pressed stop/);
    assert.match(out, /AbortSignal: CANCELLED/);
  });
});
