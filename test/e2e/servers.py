"""Servers for the end-to-end tests, run in a target namespace.

  servers.py hash ADDRESS PORT   per connection: read until the client half-closes,
                                 answer "SHA256HEX BYTES" of what arrived
  servers.py echo ADDRESS PORT   per connection: echo every byte back until EOF
  servers.py udpecho ADDRESS PORT [PREFIX]
                                 each datagram back to its sender, PREFIX first, from one
                                 process (socat's UDP4-RECVFROM with fork was dropped: on a
                                 loaded machine its children, which share the socket, take
                                 datagrams from other peers, which then go unanswered)
Prints "ready" once listening.
"""
import hashlib, socket, socketserver, sys

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

def udp_echo(address, port, prefix):
    s = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((address, port))
    print("ready", flush=True)
    while True:
        data, peer = s.recvfrom(65536)
        s.sendto(prefix + data, peer)

if __name__ == "__main__":
    if sys.argv[1] == "udpecho":
        udp_echo(sys.argv[2], int(sys.argv[3]), sys.argv[4].encode() if len(sys.argv) > 4 else b"")
    handler = {"hash": Hash, "echo": Echo}[sys.argv[1]]
    with Server((sys.argv[2], int(sys.argv[3])), handler) as server:
        print("ready", flush=True)
        server.serve_forever()
