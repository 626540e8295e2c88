"""A minimal OTLP/HTTP trace receiver for `cargo xtask conformance`.

Usage: python3 otlp_receiver.py SPANS_FILE

Listens on 127.0.0.1 on a free port and prints that port (one line) on
stdout first. Accepts `POST /v1/traces` with `Content-Type:
application/x-protobuf` (optionally `Content-Encoding: gzip`), parses the
body with the official `opentelemetry-proto` bindings as an
`ExportTraceServiceRequest`, appends one JSON line per span to SPANS_FILE,
and answers an empty `ExportTraceServiceResponse` (200,
application/x-protobuf). Anything else is refused (404, 405, 415, 400), and
the refusal is written to SPANS_FILE as a line with an `error` key, so the
check sees it. Runs until killed.

Each span line: trace_id, span_id, parent_span_id (lowercase hex, "" for
none), name, kind (the enum's name, e.g. SPAN_KIND_SERVER), attributes
(a JSON object), service_name (the resource's `service.name`), scope (the
instrumentation scope's name), status (the status code's name).
"""

import gzip
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

PROTOBUF = "application/x-protobuf"


def any_value(value):
    """An `AnyValue` as plain JSON."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def attributes(key_values):
    return {kv.key: any_value(kv.value) for kv in key_values}


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    out = None
    lock = threading.Lock()

    def write(self, records):
        with self.lock:
            with open(self.out, "a", encoding="utf-8") as out:
                for record in records:
                    out.write(json.dumps(record, sort_keys=True) + "\n")

    def refuse(self, status, reason):
        self.write([{"error": f"{self.command} {self.path}: {status} {reason}"}])
        body = reason.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.refuse(405 if self.path == "/v1/traces" else 404, "POST /v1/traces only")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path != "/v1/traces":
            return self.refuse(404, "POST /v1/traces only")
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if content_type != PROTOBUF:
            return self.refuse(415, f"Content-Type {content_type!r}, expected {PROTOBUF}")
        encoding = (self.headers.get("Content-Encoding") or "identity").strip()
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding != "identity":
                return self.refuse(415, f"Content-Encoding {encoding!r}")
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
        except (DecodeError, OSError, EOFError) as error:
            return self.refuse(400, f"not an ExportTraceServiceRequest: {error}")
        records = []
        for resource_spans in request.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    records.append(
                        {
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(),
                            "name": span.name,
                            "kind": Span.SpanKind.Name(span.kind),
                            "attributes": attributes(span.attributes),
                            "service_name": resource.get("service.name"),
                            "scope": scope_spans.scope.name,
                            "status": Status.StatusCode.Name(span.status.code),
                        }
                    )
        self.write(records)
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", PROTOBUF)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format, *args):
        pass


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: otlp_receiver.py SPANS_FILE")
    Receiver.out = sys.argv[1]
    open(Receiver.out, "w").close()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
