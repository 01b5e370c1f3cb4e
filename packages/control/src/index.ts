export * from "./errors";
export * from "./context";
export * from "./units";
export * from "./rate-limit";
export * from "./client-address";
export * from "./runtime";
export * from "./jobs/queues";
export * from "./keys/passwords";
export * from "./keys/unlock-grants";
export * from "./live/live-state";
export * from "./metrics/metrics-listen";
export * from "./metrics/metrics-server";
export * from "./activity/activity";
export * from "./activity/account-activity";
export * from "./accounts/accounts";
export * from "./accounts/invitations";
export * from "./tokens/tokens";
export * from "./devices/devices";
export * from "./devices/device-access";
export * from "./devices/psk";
export { getNbdCa, issueNbdCertificate } from "./devices/nbd-ca";
export {
  createCertificateAuthority,
  fingerprintOfDer,
  fingerprintOfPem,
  issueCertificate,
  loadCertificateAuthority,
  type CertificateAuthority,
  type CertificateSubject,
  type IssuedCertificate,
} from "./devices/certificates";
export * from "./volumes/inputs";
export * from "./volumes/view";
export * from "./volumes/volumes";
export * from "./volumes/delete";
export * from "./volumes/detach";
export * from "./volumes/reads";
export * from "./volumes/recover";
export * from "./keys/auth-secret";
export * from "./keys/master-key-file";
export * from "./open-store";
export * from "./attach/shell-words";
export * from "./attach/device-files";
export * from "./attach/attach-commands";
export * from "./attach/device-attach";
export * from "./volumes/lease-channel";
export * from "./orphans/orphan-channel";
export * from "./orphans/orphan-sets";
export * from "./snapshots/index";
export * from "./volumes/import";
export { shownSource, type ImportSource } from "./volumes/import-source";
