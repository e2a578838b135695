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
  clients.py udp-loop HOST PORT SECONDS INTERVAL_MS
                                  send a numbered datagram every INTERVAL_MS for
                                  SECONDS, print "started" at the first reply, then
                                  {"sent", "received", "maxGapMs", "lostBeforeMark",
                                  "lostAfterMark"}: the longest time between two
                                  replies, and the datagrams never answered, sent
                                  before and after a line came on stdin
  clients.py udp-echo ADDRESS PORT
                                  answer every datagram with itself
  clients.py random HOST PORT BYTES
                                  send BYTES random bytes, half-close, print
                                  "BYTES SHA256" of what was sent, then the reply
  clients.py echo HOST PORT       one connection to an echo server: a line every
                                  50 ms, each echo checked; on a line on stdin
                                  print {"sent": n, "echoed": m, "error": ...}
"""
import hashlib, http.client, json, os, random, select, socket, sys, time

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
def udp_loop(host, port, seconds, interval_ms):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((host, port))
    s.setblocking(False)
    start = time.monotonic()
    next_send = start
    sent = 0
    mark = None  # the datagram number sent when a line came on stdin
    replied = set()
    last = None
    max_gap = 0.0
    stdin_open = True
    while True:
        now = time.monotonic()
        if now - start >= seconds:
            break
        if now >= next_send:
            try:
                s.send(b"%d" % sent)
            except OSError:
                pass  # an ICMP error reported on the connected socket: keep going
            sent += 1
            next_send += interval_ms / 1000.0
        watch = [s, sys.stdin] if stdin_open else [s]
        ready, _, _ = select.select(watch, [], [], max(0.0, next_send - time.monotonic()))
        if sys.stdin in ready:
            if sys.stdin.readline() == "":
                stdin_open = False
            elif mark is None:
                mark = sent
        while s in ready:
            try:
                data = s.recv(2048)
            except BlockingIOError:
                break
            except OSError:
                continue
            t = time.monotonic()
            if last is None:
                print("started", flush=True)
            else:
                max_gap = max(max_gap, t - last)
            last = t
            replied.add(int(data))
    lost = [i for i in range(sent) if i not in replied]
    m = sent if mark is None else mark
    print(json.dumps({"sent": sent, "received": len(replied), "maxGapMs": round(max_gap * 1000, 1),
                      "lostBeforeMark": len([i for i in lost if i < m]), "lostAfterMark": len([i for i in lost if i >= m])}), flush=True)

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
    elif sys.argv[1] in ("bulk", "many", "udp"):
        {"bulk": bulk, "many": many, "udp": udp}[sys.argv[1]](sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "udp-echo":
        e = socket.socket(socket.AF_INET6 if ":" in sys.argv[2] else socket.AF_INET, socket.SOCK_DGRAM)
        e.bind((sys.argv[2], int(sys.argv[3])))
        while True:
            d, a = e.recvfrom(2048)
            e.sendto(d, a)
    elif sys.argv[1] == "udp-loop":
        udp_loop(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
    elif sys.argv[1] == "random":
        random_upload(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "echo":
        echo(sys.argv[2], int(sys.argv[3]))
