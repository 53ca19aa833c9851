// The real modelruntime server, started once per test file on a free loopback port.
//
// `modelruntime serve --address 127.0.0.1:0 --ready-file F` writes the address it listens on to
// F once serving; SIGTERM stops it (exit 0). Its log (one line per RPC, with the outcome and the
// number of chunks sent) is kept, so tests can check what the server saw: a cancelled stream
// shows up as `outcome=Cancelled chunks=N`.

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

/** The repository's root: $MODELRUNTIME_REPO (set by `make test-ts`), else found from here. */
export function repoRoot(): string {
  const fromEnv = process.env.MODELRUNTIME_REPO;
  if (fromEnv) return resolve(fromEnv);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "protos", "modelruntime", "v1"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the repository root; set MODELRUNTIME_REPO");
    dir = parent;
  }
}

export interface LogLine {
  readonly at: number;
  readonly text: string;
}

export class TestServer {
  readonly address: string;
  readonly log: LogLine[];
  readonly #process: ChildProcess;
  readonly #tmp: string;

  private constructor(address: string, child: ChildProcess, log: LogLine[], tmp: string) {
    this.address = address;
    this.#process = child;
    this.log = log;
    this.#tmp = tmp;
  }

  static async start(): Promise<TestServer> {
    const root = repoRoot();
    const command = process.env.MODELRUNTIME_SERVER ?? join(root, ".venv", "bin", "modelruntime");
    if (!existsSync(command)) {
      throw new Error(`${command} does not exist: run the tests with 'make test-ts' from ${root}`);
    }
    const tmp = mkdtempSync(join(tmpdir(), "modelruntime-ts-"));
    const readyFile = join(tmp, "ready");
    const child = spawn(command, ["serve", "--address", "127.0.0.1:0", "--ready-file", readyFile], {
      cwd: root,
      env: { ...process.env, MODELRUNTIME_LOG_LEVEL: "INFO" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const log: LogLine[] = [];
    let pending = "";
    const collect = (data: Buffer): void => {
      pending += data.toString("utf8");
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const text of lines) log.push({ at: Date.now(), text });
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    let exit: string | undefined;
    child.on("exit", (code, signal) => (exit = `exited with ${code ?? signal}`));

    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (existsSync(readyFile)) {
        const address = readFileSync(readyFile, "utf8").trim();
        if (address) return new TestServer(address, child, log, tmp);
      }
      if (exit !== undefined || Date.now() > deadline) {
        child.kill("SIGKILL");
        rmSync(tmp, { recursive: true, force: true });
        const why = exit ?? `not ready within ${START_TIMEOUT_MS} ms`;
        throw new Error(`the server ${why}:\n${log.map((l) => l.text).join("\n")}`);
      }
      await sleep(50);
    }
  }

  /**
   * The first log line after `since` (a `Date.now()`) that matches, waiting up to `timeoutMs`
   * for it; undefined if none came.
   */
  async waitForLog(
    pattern: RegExp,
    since: number,
    timeoutMs = 3_000,
  ): Promise<LogLine | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.log.find((l) => l.at >= since && pattern.test(l.text));
      if (line !== undefined || Date.now() > deadline) return line;
      await sleep(20);
    }
  }

  /** The log lines after `since`, for a failure's message. */
  logSince(since: number): string {
    return this.log
      .filter((l) => l.at >= since)
      .map((l) => l.text)
      .join("\n");
  }

  /** SIGTERM, then the exit code (SIGKILL after STOP_TIMEOUT_MS). */
  async stop(): Promise<number | null> {
    const child = this.#process;
    try {
      if (child.exitCode !== null) return child.exitCode;
      const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
      const code = await exited;
      clearTimeout(timer);
      return code;
    } finally {
      rmSync(this.#tmp, { recursive: true, force: true });
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}
