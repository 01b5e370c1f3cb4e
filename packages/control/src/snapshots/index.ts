export * from "./snapshots";
export * from "./clone";
export { commitThroughHolder } from "./holder-commit";
