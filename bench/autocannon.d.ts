// autocannon ships no types and @types/autocannon is not a dependency: this declares only what the bench uses.
declare module 'autocannon' {
  interface Histogram {
    readonly average: number;
    readonly mean: number;
    readonly stddev: number;
    readonly min: number;
    readonly max: number;
    readonly p50: number;
    readonly p90: number;
    readonly p99: number;
  }

  interface Options {
    readonly url: string;
    readonly connections?: number;
    readonly duration?: number;
    readonly amount?: number;
    readonly timeout?: number;
    readonly pipelining?: number;
    readonly method?: 'GET' | 'POST';
    readonly headers?: Record<string, string>;
    readonly body?: string | Buffer;
  }

  interface Result {
    readonly requests: Histogram & { readonly total: number; readonly sent: number };
    readonly latency: Histogram & { readonly totalCount: number };
    readonly throughput: Histogram;
    readonly duration: number;
    readonly errors: number;
    readonly timeouts: number;
    readonly non2xx: number;
    readonly '2xx': number;
  }

  /** An EventEmitter that is also a thenable for the result. */
  interface Instance extends PromiseLike<Result> {
    stop(): void;
    /**
     * Every response, as it completes. `responseTime` is in ms with sub-ms precision (process.hrtime from
     * the request's write to the response's end); the result's histogram keeps whole ms only.
     */
    on(
      event: 'response',
      listener: (client: unknown, statusCode: number, resBytes: number, responseTime: number) => void,
    ): this;
  }

  function autocannon(options: Options): Instance;
  export = autocannon;
}
