"""``millinet serve``: the reference scheduler service for an exported policy folder."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve an exported policy over HTTP",
        description="Load an exported policy folder (see `millinet export`) and answer "
        "placement requests over HTTP: POST /v1/decide, POST /v1/decide/batch, GET /healthz, "
        "OpenAPI at /openapi.json (docs at /docs).",
    )
    p.add_argument("folder", metavar="DIR", help="exported policy folder")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--max-batch", type=int, default=256, help="largest batch request (256)")
    p.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="log level; info logs every request (default info)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from millinet.envs.errors import require_extra

    require_extra("serve", "millinet serve")
    from millinet.experiments.errors import UserError
    from millinet.scheduler.runtime import PolicyFolderError
    from millinet.scheduler.service import serve

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be in 0..65535, got {args.port}")
    if args.max_batch < 1:
        raise UserError(f"--max-batch must be >= 1, got {args.max_batch}")
    try:
        serve(args.folder, args.host, args.port, args.log_level, args.max_batch)
    except PolicyFolderError as exc:
        raise UserError(f"refusing to serve: {exc}") from exc
    return 0
