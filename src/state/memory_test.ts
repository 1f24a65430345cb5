import { MemoryStore } from "./memory.ts";
import { runStoreContract } from "./store_contract.ts";

runStoreContract("memory", { open: () => Promise.resolve(new MemoryStore()) });
