"""Clients for the end-to-end tests, run in the client namespace.

  clients.py hold HOST PORT N     open N keep-alive HTTP connections, GET /id on
                                  each, print the ids as JSON, wait for a line on
                                  stdin, GET /id again on the same connections,
                                  print {"before": [...], "after": [...]}
  clients.py upload HOST PORT BYTES
                                  send BYTES bytes, half-close, print the reply
"""
import http.client, json, socket, sys

def hold(host, port, n):
    conns = [http.client.HTTPConnection(host, port, timeout=10) for _ in range(n)]
    def get(c):
        try:
            c.request("GET", "/id")
            return c.getresponse().read().decode().strip()
        except Exception as e:
            return "error: %s" % e
    before = [get(c) for c in conns]
    print(json.dumps({"before": before}), flush=True)
    sys.stdin.readline()
    after = [get(c) for c in conns]
    print(json.dumps({"before": before, "after": after}), flush=True)

def upload(host, port, size):
    s = socket.create_connection((host, port), timeout=20)
    s.sendall(b"x" * size)
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        reply += chunk
    print(reply.decode().strip(), flush=True)

if __name__ == "__main__":
    if sys.argv[1] == "hold":
        hold(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "upload":
        upload(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
