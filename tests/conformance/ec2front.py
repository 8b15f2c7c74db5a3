"""A stand-in for an EC2 API front end (upstream: openstack/ec2-api, or Nova's old EC2
API): it receives requests exactly as real AWS clients send them, and turns each into
Keystone's ec2tokens body the way ec2-api's EC2KeystoneAuth middleware does
(ec2api/api/__init__.py): signature and access key from the `Signature`/`AWSAccessKeyId`
parameters (V2) or from the `Authorization` header (V4); `params` = every query and form
parameter except `Signature` for V2, `{}` for V4; `host` = the Host header (with the
port); `verb`, `path`; `headers` = every request header, names as WSGI/webob spells them
(`X-Amz-Date`, `Content-Type`); `body_hash` = hex SHA-256 of the body.

It answers each request with an empty DescribeRegions response so that the clients
(boto3, awscli) are content.
"""

import hashlib
import http.server
import threading
import urllib.parse

EMPTY_REPLY = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
               b'<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
               b'<requestId>req-00000000-0000-0000-0000-000000000000</requestId>'
               b'<regionInfo/></DescribeRegionsResponse>')


class Captured:
    def __init__(self, method, target, headers, body):
        self.method = method
        url = urllib.parse.urlsplit(target)
        self.path = url.path
        self.query = url.query
        # webob (and WSGI) present header names title-cased: HTTP_X_AMZ_DATE -> X-Amz-Date
        self.headers = {k.title(): v for k, v in headers.items()}
        self.body = body

    @property
    def params(self):
        """webob's req.params: query string and form body, merged."""
        p = dict(urllib.parse.parse_qsl(self.query, keep_blank_values=True))
        if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            p.update(urllib.parse.parse_qsl(self.body.decode(), keep_blank_values=True))
        return p

    def keystone_credentials(self):
        """The `credentials` dict ec2-api posts to Keystone for this request."""
        params = self.params
        auth = self.headers.get("Authorization", "")
        signature = params.get("Signature") or params.get("X-Amz-Signature")
        if signature is None and auth.startswith("AWS4-HMAC-SHA256"):
            signature = auth.partition("Signature=")[2].split(",")[0]
        access = params.get("AWSAccessKeyId")
        if access is None and params.get("X-Amz-Credential"):
            access = params["X-Amz-Credential"].split("/")[0]
        if access is None and auth.startswith("AWS4-HMAC-SHA256"):
            access = auth.partition("Credential=")[2].split(",")[0].split("/")[0]
        if "X-Amz-Signature" in params or "Authorization" in self.headers:
            params = {}
        else:
            params = {k: v for k, v in params.items() if k != "Signature"}
        return {
            "access": access,
            "signature": signature,
            "host": self.headers["Host"],
            "verb": self.method,
            "path": self.path,
            "params": params,
            "headers": dict(self.headers),
            "body_hash": hashlib.sha256(self.body).hexdigest(),
        }


class Ec2FrontEnd:
    """A loopback HTTP server recording each request; use as a context manager."""

    def __init__(self, path="/"):
        self.requests = []
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                front.requests.append(Captured(self.command, self.path, self.headers, body))
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(EMPTY_REPLY)))
                self.end_headers()
                self.wfile.write(EMPTY_REPLY)

            do_GET = do_POST = _handle

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def last(self):
        assert self.requests, "the client sent nothing"
        return self.requests[-1]
