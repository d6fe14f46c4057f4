"""A tiny webhook receiver on 127.0.0.1 for the notification tests: records, fails or hangs on request."""

import http.server
import json
import threading


class WebhookServer:
    """Serves one behaviour (``ok``, ``fail`` or ``hang``) on an ephemeral loopback port."""

    def __init__(self, behaviour='ok', hang_seconds=3.0):
        self.behaviour = behaviour
        self.received = []
        self.hang = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                length = int(self.headers.get('Content-Length', 0))
                owner.received.append(json.loads(self.rfile.read(length)))
                if owner.behaviour == 'hang':
                    owner.hang.wait(hang_seconds)
                status = 500 if owner.behaviour == 'fail' else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b'{}')

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f'http://127.0.0.1:{self.server.server_port}/hook'

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.hang.set()
        self.server.shutdown()
        self.server.server_close()
