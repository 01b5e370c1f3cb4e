import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { describeObjectStoreSuite } from "../testing/object-store-suite";
import { DirectoryObjectStore } from "./directory-store";

const roots = new Map<object, string>();

describeObjectStoreSuite("directory", {
  async create() {
    const root = await mkdtemp(path.join(tmpdir(), "stratus-dirstore-"));
    const store = new DirectoryObjectStore({ root });
    roots.set(store, root);
    return store;
  },
  async destroy(store) {
    await store.close();
    await rm(roots.get(store)!, { recursive: true, force: true });
  },
});

describe("DirectoryObjectStore specifics", () => {
  let root: string;
  let store: DirectoryObjectStore;

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), "stratus-dirstore-"));
    store = new DirectoryObjectStore({ root: path.join(root, "bucket") });
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("maps a key to the same relative file path", async () => {
    await store.put("vol/v1/c/0000000000000001/0000000000000002", Buffer.from("chunk"));
    expect(await readdir(path.join(root, "bucket/vol/v1/c/0000000000000001"))).toEqual(["0000000000000002"]);
  });

  it.each(["", "/abs", "a//b", "a/", "../escape", "a/../b", "a/./b", "a\0b", "a/.stratus-tmp-x"])("rejects the key %j with EINVAL", async (key) => {
    await expect(store.put(key, Buffer.from("x"))).rejects.toMatchObject({ code: "EINVAL" });
    await expect(store.get(key)).rejects.toMatchObject({ code: "EINVAL" });
    await expect(store.head(key)).rejects.toMatchObject({ code: "EINVAL" });
    await expect(store.deleteMany([key])).rejects.toMatchObject({ code: "EINVAL" });
  });

  it("rejects a prefix that climbs out of the root", async () => {
    await expect(store.list({ prefix: "../" })).rejects.toMatchObject({ code: "EINVAL" });
  });

  it("leaves no temp files and hides stray ones from listings", async () => {
    await store.put("d/k", Buffer.from("1"));
    await store.put("d/k", Buffer.from("2"));
    expect(await readdir(path.join(root, "bucket/d"))).toEqual(["k"]);
    // What a crash between write and rename leaves behind: invisible, never a half object.
    await writeFile(path.join(root, "bucket/d/.stratus-tmp-deadbeef"), "half");
    expect((await store.list({ prefix: "" })).objects).toEqual([{ key: "d/k", size: 1 }]);
  });

  it("removes directories emptied by deletes", async () => {
    await store.put("vol/v1/c/0000000000000001/0000000000000002", Buffer.from("chunk"));
    await store.put("vol/v1/keep", Buffer.from("k"));
    await store.deleteMany(["vol/v1/c/0000000000000001/0000000000000002"]);
    expect(await readdir(path.join(root, "bucket/vol/v1"))).toEqual(["keep"]);
  });
});
