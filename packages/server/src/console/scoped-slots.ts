/**
 * Counts what is open per operator scope (a tenant, or all tenants) and in all: live lists and backtests each hold
 * one of the console's few database connections, so one token's holder must not be able to take them all and hold
 * up every other operator's pages.
 */
export class ScopedSlots {
  private readonly open = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly perScope: number,
    private readonly overall = Number.POSITIVE_INFINITY,
  ) {}

  /** A slot for `scope`, given back by the function returned; null when the scope, or the console, has none left. */
  take(scope: string): (() => void) | null {
    const open = this.open.get(scope) ?? 0;
    if (open >= this.perScope || this.total >= this.overall) return null;
    this.open.set(scope, open + 1);
    this.total++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.total--;
      const left = (this.open.get(scope) ?? 1) - 1;
      if (left === 0) this.open.delete(scope);
      else this.open.set(scope, left);
    };
  }
}
