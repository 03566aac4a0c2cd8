// A small time-bounded cache for reference data read on every webhook (connections with their
// decrypted secrets, practitioners, locations, bindings). Entries live `ttlMs` (default 2 s), so an
// edit made through another process is seen within that time; edits through this process clear it.
export class TtlCache {
  private entries = new Map<string, { until: number; value: Promise<unknown> }>();
  constructor(private ttlMs = 2_000, private max = 5_000) {}

  get<T>(key: string, load: () => Promise<T>): Promise<T> {
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && hit.until > now) return hit.value as Promise<T>;
    if (this.entries.size >= this.max) this.entries.clear();
    const value = load();
    this.entries.set(key, { until: now + this.ttlMs, value });
    // A failed load is not remembered.
    value.catch(() => this.entries.delete(key));
    return value;
  }

  clear(): void {
    this.entries.clear();
  }
}

/** Through the cache when there is one (reference data), straight to the loader otherwise. */
export function cached<T>(cache: TtlCache | undefined, key: string, load: () => Promise<T>): Promise<T> {
  return cache ? cache.get(key, load) : load();
}
