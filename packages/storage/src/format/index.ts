export * from "./volume-header";
export * from "./manifest";
export * from "./snapshot-manifest";
