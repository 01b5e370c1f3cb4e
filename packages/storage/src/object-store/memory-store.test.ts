import { describeObjectStoreSuite } from "../testing/object-store-suite";
import { MemoryObjectStore } from "./memory-store";

describeObjectStoreSuite("memory", { create: async () => new MemoryObjectStore() });
