#!/usr/bin/env python3
"""A JWKS endpoint under the fault script's control (issue #13, fault d).

Serves, on 127.0.0.1:PORT, any path: the bytes of the file DIR/serve as it is at each request
(200, application/json), so the script switches between good and garbage documents by copying
a file. "down" is the script stopping this process. Each request is printed (a count of fetches).

usage: jwks_server.py PORT DIR
"""
import http.server
import sys
import time

port, d = int(sys.argv[1]), sys.argv[2]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server name
        with open(f"{d}/serve", "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        print(f"{time.time():.1f} GET {self.path} {len(body)}B", flush=True)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer.allow_reuse_address = True
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
