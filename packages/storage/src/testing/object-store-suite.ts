/**
 * The one conformance suite every ObjectStore runs (memory, directory, S3): the behaviour the
 * volume engine relies on — exact bytes, ranges, missing keys as `undefined`, idempotent deletes,
 * and listings in key byte order that resume with `startAfter`.
 */
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ObjectStore } from "../object-store/object-store";

export interface ObjectStoreFactory {
  /** Switches for documented deviations of a store (all default true). */
  supports?: {
    /**
     * Listing order is the keys' byte order even where a separator sorts against other
     * characters ("a-c" < "a/b"). s3rver walks its directories instead and lists "a/b" first;
     * chunk keys are fixed-width hex, so the engine never depends on this case.
     */
    byteOrderAcrossSeparators?: boolean;
  };
  /** A store with no objects in it, fresh for each test. */
  create(): Promise<ObjectStore>;
  /** Removes what `create` made (default: store.close()). */
  destroy?(store: ObjectStore): Promise<void>;
}

export function describeObjectStoreSuite(name: string, factory: ObjectStoreFactory): void {
  describe(`ObjectStore conformance: ${name}`, () => {
    let store: ObjectStore;

    beforeEach(async () => {
      store = await factory.create();
    });

    afterEach(async () => {
      await (factory.destroy ? factory.destroy(store) : store.close());
    });

    async function listAll(prefix: string, limit?: number): Promise<string[]> {
      const keys: string[] = [];
      let startAfter: string | undefined;
      for (;;) {
        const page = await store.list({ prefix, startAfter, limit });
        keys.push(...page.objects.map((o) => o.key));
        if (!page.truncated) return keys;
        expect(page.objects.length).toBeGreaterThan(0);
        startAfter = page.objects.at(-1)!.key;
      }
    }

    it("stores and returns exact bytes, including every byte value", async () => {
      const body = Buffer.alloc(512);
      for (let i = 0; i < body.length; i++) body[i] = i % 256;
      await store.put("a/b/binary", body);
      expect(await store.get("a/b/binary")).toEqual(body);
      expect(await store.head("a/b/binary")).toEqual({ key: "a/b/binary", size: 512 });
    });

    it("copies the body: changing the caller's buffer after put changes nothing", async () => {
      const body = Buffer.from("original");
      await store.put("k", body);
      body.fill(0);
      expect((await store.get("k"))!.toString()).toBe("original");
    });

    it("stores an empty object", async () => {
      await store.put("empty", new Uint8Array(0));
      const body = await store.get("empty");
      expect(body).toBeDefined();
      expect(body!.length).toBe(0);
      expect(await store.head("empty")).toEqual({ key: "empty", size: 0 });
      expect((await store.list({ prefix: "" })).objects).toEqual([{ key: "empty", size: 0 }]);
    });

    it("answers undefined for a missing key", async () => {
      expect(await store.get("missing/key")).toBeUndefined();
      expect(await store.get("missing/key", { offset: 0, length: 4 })).toBeUndefined();
      expect(await store.head("missing/key")).toBeUndefined();
    });

    it("overwrites an object", async () => {
      await store.put("over", Buffer.from("first version, longer"));
      await store.put("over", Buffer.from("second"));
      expect((await store.get("over"))!.toString()).toBe("second");
      expect((await store.head("over"))!.size).toBe(6);
    });

    it("reads byte ranges, clamped to the object's end", async () => {
      const body = randomBytes(1000);
      await store.put("ranged", body);
      expect(await store.get("ranged", { offset: 0, length: 1 })).toEqual(body.subarray(0, 1));
      expect(await store.get("ranged", { offset: 100, length: 250 })).toEqual(body.subarray(100, 350));
      expect(await store.get("ranged", { offset: 990, length: 10 })).toEqual(body.subarray(990));
      expect(await store.get("ranged", { offset: 999, length: 1 })).toEqual(body.subarray(999));
      expect(await store.get("ranged", { offset: 900, length: 500 })).toEqual(body.subarray(900));
      expect((await store.get("ranged", { offset: 1000, length: 10 }))!.length).toBe(0);
      expect((await store.get("ranged", { offset: 5, length: 0 }))!.length).toBe(0);
    });

    it("deletes many keys, ignoring missing ones", async () => {
      await Promise.all(["d/1", "d/2", "d/3", "keep"].map((key) => store.put(key, Buffer.from(key))));
      await store.deleteMany(["d/1", "d/3", "d/never-existed"]);
      await store.deleteMany([]);
      expect(await store.get("d/1")).toBeUndefined();
      expect(await store.get("d/3")).toBeUndefined();
      expect((await store.get("d/2"))!.toString()).toBe("d/2");
      expect(await listAll("")).toEqual(["d/2", "keep"]);
      await store.deleteMany(["d/2", "d/2"]);
      expect(await listAll("")).toEqual(["keep"]);
    });

    it("deletes more keys than one request can carry", async () => {
      const keys = Array.from({ length: 1003 }, (_, i) => `bulk/${i.toString(16).padStart(16, "0")}`);
      for (let i = 0; i < keys.length; i += 50) {
        await Promise.all(keys.slice(i, i + 50).map((key) => store.put(key, Buffer.from("x"))));
      }
      expect((await listAll("bulk/")).length).toBe(1003);
      await store.deleteMany(keys);
      expect(await listAll("bulk/")).toEqual([]);
    });

    it("lists zero-padded hex keys in numeric order with sizes", async () => {
      const indices = [0, 255, 1, 16, 4096, 15, 2 ** 40, 17];
      const key = (i: number) => `vol/v1/c/${i.toString(16).padStart(16, "0")}/0000000000000001`;
      for (const i of indices) await store.put(key(i), Buffer.alloc(i % 7));
      const page = await store.list({ prefix: "vol/v1/c/" });
      expect(page.truncated).toBe(false);
      expect(page.objects).toEqual([...indices].sort((a, b) => a - b).map((i) => ({ key: key(i), size: i % 7 })));
    });

    // Registered only where supported: a switched-off case is not run, rather than reported skipped.
    if (factory.supports?.byteOrderAcrossSeparators !== false) {
      it("lists in key byte order across separators ('-' < '/' < '0')", async () => {
        const keys = ["a/b", "a-c", "a0", "a/a/z", "b", "a/c"];
        for (const key of keys) await store.put(key, Buffer.from(key));
        expect(await listAll("")).toEqual(["a-c", "a/a/z", "a/b", "a/c", "a0", "b"]);
      });
    }

    it("lists only keys under a prefix, including a partial last segment", async () => {
      for (const key of ["vol/a/x", "vol/ab/y", "vol/b/z", "volume", "other/vol/a"]) await store.put(key, Buffer.from("1"));
      expect(await listAll("vol/a")).toEqual(["vol/a/x", "vol/ab/y"]);
      expect(await listAll("vol/a/")).toEqual(["vol/a/x"]);
      expect(await listAll("vol/")).toEqual(["vol/a/x", "vol/ab/y", "vol/b/z"]);
      expect(await listAll("nothing/")).toEqual([]);
    });

    it("lists strictly after startAfter, which need not exist", async () => {
      const keys = ["p/01", "p/02", "p/03/x", "p/04", "p/05"];
      for (const key of keys) await store.put(key, Buffer.from("1"));
      const after = async (startAfter: string) => (await store.list({ prefix: "p/", startAfter })).objects.map((o) => o.key);
      expect(await after("p/02")).toEqual(["p/03/x", "p/04", "p/05"]);
      expect(await after("p/025")).toEqual(["p/03/x", "p/04", "p/05"]);
      expect(await after("p/03")).toEqual(["p/03/x", "p/04", "p/05"]);
      expect(await after("p/03/x")).toEqual(["p/04", "p/05"]);
      expect(await after("p/05")).toEqual([]);
      expect(await after("a")).toEqual(keys);
    });

    it("pages through a listing with a limit", async () => {
      const keys = Array.from({ length: 23 }, (_, i) => `pg/${(i * 7919).toString(16).padStart(16, "0")}`);
      await Promise.all(keys.map((key) => store.put(key, Buffer.from("1"))));
      const first = await store.list({ prefix: "pg/", limit: 5 });
      expect(first.objects.length).toBeLessThanOrEqual(5);
      expect(first.truncated).toBe(true);
      expect(await listAll("pg/", 5)).toEqual([...keys].sort());
      expect(await listAll("pg/", 1)).toEqual([...keys].sort());
      const exact = await store.list({ prefix: "pg/", limit: 23 });
      expect(exact.objects.length).toBe(23);
      expect(exact.truncated).toBe(false);
    });

    it("sees a deleted key gone from listings and a re-put key back", async () => {
      await store.put("cycle/k", Buffer.from("1"));
      await store.deleteMany(["cycle/k"]);
      expect(await listAll("cycle/")).toEqual([]);
      await store.put("cycle/k", Buffer.from("22"));
      expect(await store.list({ prefix: "cycle/" })).toEqual({ objects: [{ key: "cycle/k", size: 2 }], truncated: false });
    });

    it("handles parallel puts and gets of large objects", async () => {
      const bodies = Array.from({ length: 16 }, () => randomBytes(256 * 1024));
      await Promise.all(bodies.map((body, i) => store.put(`big/${i.toString().padStart(2, "0")}`, body)));
      const read = await Promise.all(bodies.map((_, i) => store.get(`big/${i.toString().padStart(2, "0")}`)));
      read.forEach((body, i) => expect(body!.equals(bodies[i]!)).toBe(true));
    });
  });
}
