export * from "./volume-header";
export * from "./manifest";
