"""A stand-in for an NSQ auth server, so the suites can drive nsqd's AUTH.

nsqd asks an HTTP auth server about every AUTH secret (GET /auth?... or, with
--auth-http-request-method=post, POST /auth with a JSON object of string
arrays). This server answers from a table the test fills, records every
request it received, can hold requests unanswered (a hung auth server) and
can be stopped (an auth server that is down: connections are refused).
"""

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def grant(identity, topic=".*", channels=(".*",), permissions=("subscribe", "publish"), ttl=3600,
          identity_url=""):
    """The JSON body of an answer that grants one authorization."""
    return {
        "ttl": ttl,
        "identity": identity,
        "identity_url": identity_url,
        "authorizations": [
            {"topic": topic, "channels": list(channels), "permissions": list(permissions)}
        ],
    }


class AuthServer:
    """A threaded auth server on a free loopback port.

    answers maps a secret to (status, json body); a secret not in the table
    gets 403. requests lists what arrived, one dict per request with method,
    path, headers, body (text or None) and fields (the query or JSON body as a
    dict of string lists, the same shape for GET and POST).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._answers = {}
        self._requests = []
        self._release = threading.Event()
        self._release.set()
        self._server = None
        self._thread = None
        self.port = None

    @property
    def address(self):
        """host:port, as nsqd's --auth-http-address takes it."""
        return f"127.0.0.1:{self.port}"

    def start(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                parsed = urllib.parse.urlsplit(self.path)
                fields = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
                owner._answer(self, parsed.path, fields, None)

            def do_POST(self):
                parsed = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                try:
                    fields = json.loads(body)
                except ValueError:
                    fields = None
                owner._answer(self, parsed.path, fields, body)

            def log_message(self, format, *args):
                # The requests are recorded; stderr stays quiet.
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                # nsqd may hang up on a held request (its own timeout); the
                # late answer then fails to send, which is expected here.
                pass

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def _answer(self, handler, path, fields, body):
        with self._lock:
            self._requests.append(
                {
                    "method": handler.command,
                    "path": handler.path,
                    "headers": dict(handler.headers.items()),
                    "body": body,
                    "fields": fields,
                }
            )
            secret = None
            if isinstance(fields, dict):
                values = fields.get("secret") or [None]
                secret = values[0]
            status, answer = self._answers.get(secret, (403, {"message": "FORBIDDEN"}))
        if path != "/auth":
            status, answer = 404, {"message": "NOT_FOUND"}
        # A hung server holds the request until released (or stopped).
        self._release.wait()
        payload = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        # One request per connection, so a stopped server cannot keep answering
        # on a connection nsqd pooled before the stop.
        handler.send_header("Connection", "close")
        handler.close_connection = True
        handler.end_headers()
        handler.wfile.write(payload)

    def set_answer(self, secret, answer, status=200):
        """Answers secret with status and the JSON body answer from now on."""
        with self._lock:
            self._answers[secret] = (status, answer)

    def allow(self, secret, identity, **kwargs):
        """Answers secret with one authorization (see grant for the options)."""
        self.set_answer(secret, grant(identity, **kwargs))

    def deny(self, secret):
        """Answers secret with 403, as an auth server refusing it."""
        self.set_answer(secret, {"message": "FORBIDDEN"}, status=403)

    def hang(self):
        """Holds every request from now on without answering."""
        self._release.clear()

    def release(self):
        """Answers the held requests and stops holding new ones."""
        self._release.set()

    def requests(self, secret=None):
        """A copy of the requests received, optionally only those for secret."""
        with self._lock:
            found = list(self._requests)
        if secret is None:
            return found
        return [
            r for r in found
            if isinstance(r["fields"], dict) and (r["fields"].get("secret") or [None])[0] == secret
        ]

    def stop(self):
        """Closes the listener, so new connections are refused (the server is down)."""
        if self._server is None:
            return
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = None
