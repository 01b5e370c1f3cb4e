import { MemoryObjectStore } from "../object-store/memory-store";
import { describeVolumeSuite } from "../testing/volume-suite";

describeVolumeSuite("memory store", { create: async () => new MemoryObjectStore() });
