"""The `modelruntime` command: `serve` starts the server; `chat`, `providers` and `models` talk
to a running one through the Python client, so a person can try the service in one line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from server.config import ConfigError, load_config
from server.workers import WORKER_INDEX


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelruntime", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="start the gRPC server")
    serve.add_argument("--config", type=Path, help="YAML config file (or MODELRUNTIME_CONFIG)")
    serve.add_argument("--address", help="host:port to listen on (default 127.0.0.1:50051)")
    serve.add_argument(
        "--ready-file",
        type=Path,
        help="write the address actually listened on to this file once serving (for port 0)",
    )
    serve.add_argument(
        "--provider-path",
        action="append",
        type=Path,
        default=[],
        help="a provider folder, or a folder of them, to load besides the built-in ones",
    )

    chat = commands.add_parser("chat", help="stream a chat from a running server")
    _add_target(chat)
    chat.add_argument("prompt", help="the user message")
    chat.add_argument("--provider", default="fake")
    chat.add_argument("--model", default="fake-chat")
    chat.add_argument("--system", help="a system message to put first")
    chat.add_argument(
        "-c",
        "--credential",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a credential (repeatable); default for the fake provider: api_key=fake-key",
    )
    chat.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a model parameter (repeatable); numbers, true/false and quoted strings are read as "
        "JSON, anything else as text",
    )

    providers = commands.add_parser("providers", help="list the providers of a running server")
    _add_target(providers)
    models = commands.add_parser("models", help="list a provider's predefined models")
    _add_target(models)
    models.add_argument("provider")

    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return _client_command(args)


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", default="127.0.0.1:50051", help="the server's host:port")
    parser.add_argument("--timeout", type=float, default=None, help="deadline in seconds")


def _serve(args: argparse.Namespace) -> int:
    from server.app import serve

    overrides: dict[str, Any] = {}
    if args.address:
        overrides["address"] = args.address
    try:
        config = load_config(args.config, overrides=overrides)
        if args.provider_path:
            config.provider_paths = [*config.provider_paths, *args.provider_path]
    except ConfigError as exc:
        print(f"modelruntime: {exc}", file=sys.stderr)
        return 2
    if config.workers > 1 and WORKER_INDEX not in os.environ:
        from server.workers import supervise

        return supervise(config, args.config, args.provider_path, args.ready_file)
    if os.environ.get(WORKER_INDEX, "0") != "0":
        config.metrics_address = None  # the first worker serves it: one port, one endpoint
    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        _run(serve(config, args.ready_file), config.event_loop)
    except (OSError, ConfigError) as exc:  # ConfigError: a credential set that fits no provider
        print(f"modelruntime: {exc}", file=sys.stderr)
        return 1
    return 0


def _run(main: Coroutine[Any, Any, None], event_loop: str) -> None:
    if event_loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if event_loop == "uvloop":
                raise ConfigError("event_loop: uvloop, but uvloop is not installed") from None
        else:
            uvloop.run(main)
            return
    asyncio.run(main)


def _client_command(args: argparse.Namespace) -> int:
    from modelruntime.client import ModelRuntimeClient, ModelRuntimeError

    try:
        with ModelRuntimeClient(args.address, default_timeout=args.timeout) as client:
            if args.command == "providers":
                for provider in client.list_providers():
                    print(f"{provider.provider}\t{provider.label.en_us}")
            elif args.command == "models":
                for model in client.list_models(args.provider):
                    print(f"{model.model}\t{model.label.en_us}")
            else:
                _chat(client, args)
    except ModelRuntimeError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _chat(client: Any, args: argparse.Namespace) -> None:
    credentials = dict(_pair(c) for c in args.credential)
    if not credentials and args.provider == "fake":
        credentials = {"api_key": "fake-key"}
    parameters = {name: _json_or_text(value) for name, value in map(_pair, args.param)}
    messages: list[dict[str, str]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": args.prompt})
    usage = None
    open_call = False
    for chunk in client.stream_llm(
        provider=args.provider,
        model=args.model,
        credentials=credentials,
        prompt_messages=messages,
        model_parameters=parameters,
    ):
        message = chunk.delta.message
        if message.reasoning_content:
            print(f"\x1b[2m{message.reasoning_content}\x1b[0m", end="", flush=True)
        print(message.content, end="", flush=True)
        for call in message.tool_calls:
            if call.function.name:
                print(")]" if open_call else "", end="")
                print(f"\n[tool call {call.id}: {call.function.name}(", end="", flush=True)
                open_call = True
            print(call.function.arguments, end="", flush=True)
        if chunk.delta.HasField("usage"):
            usage = chunk.delta.usage
            finish = chunk.delta.finish_reason or "stop"
    print(")]" if open_call else "")
    if usage is not None:
        print(
            f"[{finish}; {usage.prompt_tokens} prompt + {usage.completion_tokens} completion "
            f"tokens; {usage.total_price} {usage.currency}; first token "
            f"{usage.time_to_first_token * 1000:.0f} ms]",
            file=sys.stderr,
        )


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"modelruntime: expected NAME=VALUE, got {text!r}")
    return name, value


def _json_or_text(value: str) -> Any:
    """Numbers, booleans and quoted strings as JSON; anything else (including JSON lists and
    objects, which parameters carry as text) as the text itself."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return value if isinstance(parsed, list | dict) or parsed is None else parsed


if __name__ == "__main__":
    raise SystemExit(main())
