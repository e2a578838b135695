"""A TCP server that reads until the client half-closes and answers "ID BYTES"
(with "sha256": "ID BYTES SHA256" of what it read).

  sink.py ID ADDRESS PORT [sha256]
"""
import hashlib, socketserver, sys

ID = sys.argv[1]
SHA = len(sys.argv) > 4 and sys.argv[4] == "sha256"

class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        total = 0
        h = hashlib.sha256()
        while True:
            chunk = self.request.recv(65536)
            if not chunk:
                break
            total += len(chunk)
            if SHA:
                h.update(chunk)
        extra = " " + h.hexdigest() if SHA else ""
        self.request.sendall(("%s %d%s\n" % (ID, total, extra)).encode())

socketserver.ThreadingTCPServer.allow_reuse_address = True
with socketserver.ThreadingTCPServer((sys.argv[2], int(sys.argv[3])), Handler) as server:
    print("ready", flush=True)
    server.serve_forever()
