"""A pod's web server: answers every GET with its pod id on the port given as argument."""

import http.server
import os
import sys


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = f"hello from {os.environ.get('RUNPOD_POD_ID')}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


port = int(sys.argv[1]) if len(sys.argv) > 1 else 8888
print(f"pod server on port {port}", flush=True)
http.server.ThreadingHTTPServer(("0.0.0.0", port), Hello).serve_forever()
