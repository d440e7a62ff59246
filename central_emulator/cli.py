"""``central-emulator --host H --port P``: run the emulator in one threaded process."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from werkzeug.serving import make_server

from . import create_app


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the emulator until interrupted; FHIR base URL http://H:P/fhir."""
    parser = argparse.ArgumentParser(prog="central-emulator",
                                     description="Stand-in for the central advocate system "
                                                 "(FHIR R4, in memory).")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8701, help="port to listen on")
    parser.add_argument("--token", default=None,
                        help="static bearer token (default: CENTRAL_EMULATOR_TOKEN, else open)")
    parser.add_argument("--no-demo", action="store_true",
                        help="start with an empty directory instead of the demo advocates")
    args = parser.parse_args(argv)
    config: dict[str, object] = {"DEMO_DIRECTORY": not args.no_demo}
    if args.token:
        config["TOKEN"] = args.token
    app = create_app(config)
    # Threaded: a "slow" request must not hold up the others, and the reply-dropping mode
    # needs the real socket that werkzeug's server exposes.
    server = make_server(args.host, args.port, app, threaded=True)
    print(f"central emulator: FHIR base http://{args.host}:{server.port}/fhir", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
