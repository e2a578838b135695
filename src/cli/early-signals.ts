// Signals that arrive while `pias run` is still starting (loading the core,
// opening the device): Node's default for SIGHUP is to exit, so a reload
// sent in the first moments would kill the daemon. main.ts installs this
// handler before it loads anything else; the run command takes over once the
// daemon is up and reloads once if a SIGHUP came meanwhile.

let hups = 0;
const remember = (): void => {
  hups++;
};

/** Remember SIGHUPs instead of exiting (main.ts, for `pias run`, before anything slow). */
export function holdSighup(): void {
  process.on("SIGHUP", remember);
}

/** Stop remembering; returns how many SIGHUPs arrived meanwhile. */
export function releaseSighup(): number {
  process.off("SIGHUP", remember);
  return hups;
}
