export * from "./key-slot";
export * from "./key-slots";
export * from "./master-key";
export * from "./inherited-keys";
