/**
 * Watches for secrets where they must not be: page HTML, API answers and process logs. Each secret
 * has a label for the failure message; `allowIn` names the one place a secret may appear (the API
 * token on its one-time display and in the create answer).
 */
export class SecretGuard {
  private readonly secrets = new Map<string, string>();

  add(label: string, value: string): void {
    if (value.length < 8) throw new Error(`secret ${label} is too short to grep for reliably`);
    this.secrets.set(label, value);
  }

  /** Labels of the secrets found in `text`, except the allowed ones. */
  find(text: string, allow: readonly string[] = []): string[] {
    const found: string[] = [];
    for (const [label, value] of this.secrets) {
      if (allow.includes(label)) continue;
      if (text.includes(value) || text.includes(encodeURIComponent(value))) found.push(label);
    }
    return found;
  }

  assertAbsent(text: string, where: string, allow: readonly string[] = []): void {
    const found = this.find(text, allow);
    if (found.length > 0) throw new Error(`secret(s) ${found.join(", ")} found in ${where}`);
  }
}
