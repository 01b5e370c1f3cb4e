export declare const GATEWAY_MALLOC_TUNABLES: string;
export declare const GATEWAY_NODE_OPTIONS: string;
export declare function gatewayProcessEnv<T extends Record<string, string | undefined>>(env: T): T & { GLIBC_TUNABLES: string; NODE_OPTIONS: string };
export declare function mallocSettingsWarning(env: Record<string, string | undefined>, platform: string): string | undefined;
