"""Clients for the end-to-end tests, run in the client namespace.

  clients.py hold HOST PORT N     open N keep-alive HTTP connections, GET /id on
                                  each, print the ids as JSON, wait for a line on
                                  stdin, GET /id again on the same connections,
                                  print {"before": [...], "after": [...]}
  clients.py upload HOST PORT BYTES
                                  send BYTES bytes, half-close, print the reply
  clients.py bulk HOST PORT MB    send MB MiB of pseudo-random bytes, half-close, print
                                  {"sent": SHA256HEX, "bytes": N, "reply": LINE}
  clients.py many HOST PORT N     N short TCP connections one after the other, each
                                  sending a line and reading it back; print the count that did
  clients.py udp HOST PORT N      N datagrams, each from its own socket (its own flow),
                                  each awaiting its reply; print the count answered
"""
import hashlib, http.client, json, random, socket, sys

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

def bulk(host, port, mib):
    block = bytearray(random.Random(2005).randbytes(1 << 20))
    h = hashlib.sha256()
    s = socket.create_connection((host, port), timeout=60)
    for i in range(mib):
        block[0:8] = i.to_bytes(8, "big")  # every MiB differs
        s.sendall(block)
        h.update(block)
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    print(json.dumps({"sent": h.hexdigest(), "bytes": mib << 20, "reply": reply.decode().strip()}), flush=True)

def many(host, port, n):
    ok = 0
    for i in range(n):
        try:
            with socket.create_connection((host, port), timeout=5) as s:
                line = ("hello %d\n" % i).encode()
                s.sendall(line)
                got = b""
                while len(got) < len(line):
                    chunk = s.recv(64)
                    if not chunk:
                        break
                    got += chunk
                ok += got == line
        except OSError:
            pass
    print(ok, flush=True)

def udp(host, port, n):
    ok = 0
    for i in range(n):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            msg = ("datagram %d\n" % i).encode()
            s.sendto(msg, (host, port))
            try:
                ok += msg in s.recv(2048)
            except OSError:
                pass
    print(ok, flush=True)

if __name__ == "__main__":
    if sys.argv[1] == "hold":
        hold(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "upload":
        upload(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        {"bulk": bulk, "many": many, "udp": udp}[sys.argv[1]](sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
