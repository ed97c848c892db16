"""`python -m devkit.hookserver`: a webhook receiver for the compose stack's end-to-end check.

It stands in for a platform's alert endpoint inside the containers (deploy/compose.local.yaml):
POST /hook records the body (the same receiver the demo uses), GET /received lists them.
"""

from __future__ import annotations

import argparse

from aiohttp import web

from devkit.demo import Hook


def app(hook: Hook) -> web.Application:
    async def received(_request: web.Request) -> web.Response:
        return web.json_response([{"at": at, "body": body} for at, body in hook.received])

    application = web.Application()
    application.router.add_post("/hook", hook.handle)
    application.router.add_get("/received", received)
    return application


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv)
    web.run_app(app(Hook()), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
