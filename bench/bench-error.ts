/** The one error type of the benchmarks: a setup step failed (tool missing, guest misbehaved, bad output). */
export class BenchError extends Error {
  override readonly name = "BenchError";
}
