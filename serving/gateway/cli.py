"""``genai-scale gateway <command>``: serve, check a config, hash an API key, run the local stub upstream.

Exit codes: 0 ok, 2 bad configuration or usage (one message listing every problem, no traceback).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genai-scale gateway",
                                description="OpenAI-compatible gateway: routing, caches, token limits.")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run the gateway")
    s.add_argument("--config", required=True, help="gateway YAML config")
    s.add_argument("--host", help="override server.host")
    s.add_argument("--port", type=int, help="override server.port")
    c = sub.add_parser("check", help="validate a config (and its tenant keys file) and print a summary")
    c.add_argument("--config", required=True)
    h = sub.add_parser("hash-key", help="print the SHA-256 digest to store for an API key read from stdin")
    h.add_argument("--generate", action="store_true", help="generate a new random key, print it and its digest")
    st = sub.add_parser("stub", help="run the local OpenAI-compatible stub upstream")
    st.add_argument("--host", default="127.0.0.1")
    st.add_argument("--port", type=int, default=9001)
    st.add_argument("--name", default="stub")
    return p


def _load(path: str):
    from serving.gateway.auth import load_keys
    from serving.gateway.config import load_config

    cfg = load_config(path)
    keys = load_keys(cfg, Path(path).parent)
    return cfg, keys


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("genai_scale.gateway")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def serve(config: str, host: str | None = None, port: int | None = None) -> int:
    from serving.gateway.errors import ConfigError

    try:
        cfg, _ = _load(config)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(cfg.semantic_cache.embedder.threads))

    import uvicorn
    from prometheus_client import start_http_server

    from serving.gateway.app import Gateway, create_app
    from serving.gateway.server import uvicorn_config

    _configure_logging(cfg.server.log_level)
    gw = Gateway(cfg, config_dir=Path(config).parent)
    app = create_app(gw)
    if cfg.server.metrics_port:
        start_http_server(cfg.server.metrics_port, addr=host or cfg.server.host, registry=gw.metrics.registry)

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig, frame):  # SIGTERM/SIGINT: report not-ready, stop accepting, drain
            gw.draining = True
            super().handle_exit(sig, frame)
            # uvicorn re-raises captured signals after shutdown; a completed drain on SIGTERM exits 0 instead
            if sig == signal.SIGTERM and sig in getattr(self, "_captured_signals", []):
                self._captured_signals.remove(sig)

    ucfg = uvicorn_config(app, cfg.server, gw.metrics, host=host or cfg.server.host, port=port or cfg.server.port,
                          loop="uvloop")
    DrainingServer(ucfg).run()
    return 0


def check(config: str) -> int:
    from serving.gateway.errors import ConfigError

    try:
        cfg, keys = _load(config)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(f"ok: {len(cfg.upstreams)} upstreams, {len(cfg.routes)} routes ({', '.join(cfg.routes)}), "
          f"{len(keys.tenants)} tenants")
    return 0


def hash_key(generate: bool) -> int:
    import secrets

    from serving.gateway.auth import hash_key as _hash

    if generate:
        key = "sk-" + secrets.token_urlsafe(32)
        print(f"key:    {key}\nsha256: {_hash(key)}")
        return 0
    key = sys.stdin.readline().strip()
    if not key:
        print("hash-key: no key on stdin", file=sys.stderr)
        return 2
    print(_hash(key))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    if not (sys.argv[1:] if argv is None else argv):  # `genai-scale gateway` alone: what it can do, not an error trace
        parser.print_help()
        return 2
    args = parser.parse_args(argv)
    if args.cmd == "serve":
        return serve(args.config, args.host, args.port)
    if args.cmd == "check":
        return check(args.config)
    if args.cmd == "hash-key":
        return hash_key(args.generate)
    from serving.gateway.stub import serve as stub_serve

    stub_serve(args.host, args.port, args.name)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
