/** A step of preparing the default guest failed: names the step and, for commands, shows their last output. */
export class GuestBuildError extends Error {
  override readonly name = "GuestBuildError";
}
