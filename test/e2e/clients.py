"""Clients for the end-to-end tests, run in the client namespace.

  clients.py hold HOST PORT N     open N keep-alive HTTP connections, GET /id on
                                  each, print the ids as JSON, wait for a line on
                                  stdin, GET /id again on the same connections,
                                  print {"before": [...], "after": [...]}
  clients.py upload HOST PORT BYTES
                                  send BYTES bytes, half-close, print the reply
  clients.py random HOST PORT BYTES
                                  send BYTES random bytes, half-close, print
                                  "BYTES SHA256" of what was sent, then the reply
  clients.py echo HOST PORT       one connection to an echo server: a line every
                                  50 ms, each echo checked; on a line on stdin
                                  print {"sent": n, "echoed": m, "error": ...}
"""
import hashlib, http.client, json, os, select, socket, sys, time

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

def random_upload(host, port, size):
    s = socket.create_connection((host, port), timeout=30)
    h = hashlib.sha256()
    left = size
    while left:
        chunk = os.urandom(min(left, 1 << 20))
        h.update(chunk)
        s.sendall(chunk)
        left -= len(chunk)
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        reply += chunk
    print("%d %s" % (size, h.hexdigest()), flush=True)
    print(reply.decode().strip(), flush=True)

def echo(host, port):
    s = socket.create_connection((host, port), timeout=5)
    sent = echoed = 0
    error = None
    print("connected", flush=True)
    while True:
        if select.select([sys.stdin], [], [], 0.05)[0]:
            break
        if error:
            continue
        try:
            line = b"line %d\n" % sent
            s.sendall(line)
            sent += 1
            got = b""
            while len(got) < len(line):
                chunk = s.recv(len(line) - len(got))
                if not chunk:
                    raise EOFError("closed")
                got += chunk
            if got != line:
                raise ValueError("echo %r for %r" % (got, line))
            echoed += 1
        except Exception as e:
            error = "%s after %d echoes" % (e, echoed)
    print(json.dumps({"sent": sent, "echoed": echoed, "error": error}), flush=True)

if __name__ == "__main__":
    if sys.argv[1] == "hold":
        hold(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "upload":
        upload(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "random":
        random_upload(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "echo":
        echo(sys.argv[2], int(sys.argv[3]))
