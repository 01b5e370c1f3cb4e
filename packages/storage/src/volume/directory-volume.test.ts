import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { DirectoryObjectStore } from "../object-store/directory-store";
import { describeVolumeSuite } from "../testing/volume-suite";

let root: string;

describeVolumeSuite("directory store", {
  async create() {
    root = await mkdtemp(path.join(tmpdir(), "stratus-volume-"));
    return new DirectoryObjectStore({ root });
  },
  async cleanup() {
    await rm(root, { recursive: true, force: true });
  },
});
