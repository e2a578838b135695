"""A TCP server that reads until the client half-closes and answers "ID BYTES".

  sink.py ID ADDRESS PORT
"""
import socketserver, sys

ID = sys.argv[1]

class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        total = 0
        while True:
            chunk = self.request.recv(65536)
            if not chunk:
                break
            total += len(chunk)
        self.request.sendall(("%s %d\n" % (ID, total)).encode())

socketserver.ThreadingTCPServer.allow_reuse_address = True
with socketserver.ThreadingTCPServer((sys.argv[2], int(sys.argv[3])), Handler) as server:
    print("ready", flush=True)
    server.serve_forever()
