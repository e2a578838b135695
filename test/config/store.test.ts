// cluster.store (src/config/store.ts) and the rotation keys of cluster: what a
// proxy configuration may say about the replicated store, and the one-line
// error for each mistake.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { validateConfig } from "../../src/config/validate.js";
import { ConfigValidationError } from "../../src/config/values.js";

const KEY = "c1".repeat(32);
const base = (cluster: Record<string, unknown>): unknown => ({ proxy: { address: "10.255.0.1" }, cluster: { id: "p1", key: KEY, ...cluster } });
const store = (etcd: unknown): unknown => base({ store: { etcd } });

function rejects(raw: unknown, message: string): void {
  assert.throws(() => validateConfig(raw), (err: unknown) => err instanceof ConfigValidationError && err.message === message);
}

describe("cluster.store", () => {
  test("absent: no store, seeds and heartbeats as before", () => {
    assert.equal(validateConfig(base({})).cluster!.store, null);
  });

  test("endpoints get their scheme, the prefix and lease TTL their defaults", () => {
    const s = validateConfig(store({ endpoints: ["127.0.0.1:2379", "http://[::1]:2379", "http://etcd-1.example:2379"] })).cluster!.store!;
    assert.deepEqual(s.etcd, {
      endpoints: ["http://127.0.0.1:2379", "http://[::1]:2379", "http://etcd-1.example:2379"],
      prefix: "/pias",
      leaseTtl: 3,
      tls: null,
      auth: null,
    });
  });

  test("tls makes bare endpoints https, and auth and prefix are kept", () => {
    const s = validateConfig(store({
      endpoints: ["10.0.0.5:2379"], prefix: "/fleet/eu", leaseTtl: 5,
      tls: { ca: "/etc/pias/ca.pem", cert: "/etc/pias/p1.pem", key: "/etc/pias/p1.key" }, auth: { username: "pias", password: "s3cret" },
    })).cluster!.store!.etcd;
    assert.deepEqual(s.endpoints, ["https://10.0.0.5:2379"]);
    assert.equal(s.prefix, "/fleet/eu");
    assert.equal(s.leaseTtl, 5);
    assert.deepEqual(s.tls, { ca: "/etc/pias/ca.pem", cert: "/etc/pias/p1.pem", key: "/etc/pias/p1.key" });
    assert.deepEqual(s.auth, { username: "pias", password: "s3cret" });
  });

  const cases: [string, unknown, string][] = [
    ["no etcd section", base({ store: {} }), "cluster.store.etcd: required: the etcd cluster that holds membership and configuration"],
    ["no endpoints", store({}), "cluster.store.etcd.endpoints: required: the etcd members' client URLs"],
    ["an empty endpoint list", store({ endpoints: [] }), "cluster.store.etcd.endpoints: must name at least one etcd member"],
    ["an endpoint without a port", store({ endpoints: ["10.0.0.5"] }), 'cluster.store.etcd.endpoints[0]: "10.0.0.5" is not an etcd endpoint (http://HOST:PORT or https://HOST:PORT)'],
    ["https without tls", store({ endpoints: ["https://10.0.0.5:2379"] }), 'cluster.store.etcd.endpoints[0]: "https://10.0.0.5:2379" is https but no tls section gives the CA'],
    ["http with tls", store({ endpoints: ["http://10.0.0.5:2379"], tls: { ca: "ca.pem" } }), 'cluster.store.etcd.endpoints[0]: "http://10.0.0.5:2379" is plain http but a tls section is set'],
    ["a cert without its key", store({ endpoints: ["10.0.0.5:2379"], tls: { ca: "ca.pem", cert: "c.pem" } }), "cluster.store.etcd.tls.key: required with a client certificate: cert and key go together"],
    ["a prefix ending in /", store({ endpoints: ["10.0.0.5:2379"], prefix: "/pias/" }), 'cluster.store.etcd.prefix: "/pias/" must start with "/", not end with "/", and hold no spaces'],
    ["a lease TTL etcd refuses", store({ endpoints: ["10.0.0.5:2379"], leaseTtl: 1 }), "cluster.store.etcd.leaseTtl: 1 is not in 2..300"],
    ["auth without a password", store({ endpoints: ["10.0.0.5:2379"], auth: { username: "pias" } }), "cluster.store.etcd.auth.password: required"],
    ["a misspelt key", store({ endpoints: ["10.0.0.5:2379"], prefx: "/x" }), 'cluster.store.etcd: unknown key "prefx" (did you mean "prefix"?)'],
  ];
  for (const [name, raw, message] of cases) test(`rejected with one line: ${name}`, () => rejects(raw, message));
});

describe("rotation keys", () => {
  test("cluster.acceptKey and a group's acceptJoinKey are parsed; absent they are null", () => {
    const c = validateConfig(base({
      acceptKey: "d2".repeat(32),
      groups: [
        { protocol: "tcp", address: "198.51.100.10", port: 80, joinKey: "a7".repeat(32), acceptJoinKey: "b8".repeat(16) },
        { protocol: "udp", address: "198.51.100.11", port: 53, joinKey: "a7".repeat(32) },
      ],
    })).cluster!;
    assert.deepEqual(c.acceptKey, new Uint8Array(32).fill(0xd2));
    assert.deepEqual(c.groups[0].acceptJoinKey, new Uint8Array(16).fill(0xb8));
    assert.equal(c.groups[1].acceptJoinKey, null);
    assert.equal(validateConfig(base({})).cluster!.acceptKey, null);
  });

  test("a rotation key that is not hex is rejected with one line", () => {
    rejects(base({ acceptKey: "zz" }), "cluster.acceptKey: must be 32 to 128 hex digits (16 to 64 bytes), e.g. from `openssl rand -hex 32`");
  });
});
