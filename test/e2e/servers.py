"""Servers for the end-to-end tests, run in a target namespace.

  servers.py hash ADDRESS PORT   per connection: read until the client half-closes,
                                 answer "SHA256HEX BYTES" of what arrived
  servers.py echo ADDRESS PORT   per connection: echo every byte back until EOF
Prints "ready" once listening.
"""
import hashlib, socketserver, sys

class Hash(socketserver.BaseRequestHandler):
    def handle(self):
        h = hashlib.sha256()
        total = 0
        while True:
            chunk = self.request.recv(1 << 20)
            if not chunk:
                break
            h.update(chunk)
            total += len(chunk)
        self.request.sendall(("%s %d\n" % (h.hexdigest(), total)).encode())

class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            chunk = self.request.recv(65536)
            if not chunk:
                break
            self.request.sendall(chunk)

class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 1024

if __name__ == "__main__":
    handler = {"hash": Hash, "echo": Echo}[sys.argv[1]]
    with Server((sys.argv[2], int(sys.argv[3])), handler) as server:
        print("ready", flush=True)
        server.serve_forever()
