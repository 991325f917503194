// The one start/stop contract of long-lived parts (js-libp2p's `Startable`), and the
// one way to start several: in order, and when one fails, stop it (it may have got
// half way) and then the ones already started, in reverse order, before the failure is
// passed on, so a node never stays half started (an open store, a listening port, an
// output holding a file).

export interface Startable {
  start(): Promise<unknown> | unknown
  /** Stopping must succeed on a part that was never started, or failed half way. */
  stop(): Promise<unknown> | unknown
}

/**
 * Start `parts` in order. On a failure, stop the part that failed and those that
 * started, last first (a failing stop is reported to `onStopError` and does not keep the
 * others from stopping), then throw the start's error.
 */
export async function startAll(parts: Startable[], onStopError: (err: unknown) => void = () => {}): Promise<void> {
  const started: Startable[] = []
  try {
    for (const part of parts) {
      started.push(part)
      await part.start()
    }
  } catch (err) {
    await stopAll(started, onStopError)
    throw err
  }
}

/** Stop `parts` last first; each stop's failure goes to `onStopError` and the rest still stop. */
export async function stopAll(parts: Startable[], onStopError: (err: unknown) => void = () => {}): Promise<void> {
  for (const part of [...parts].reverse()) {
    try {
      await part.stop()
    } catch (err) {
      onStopError(err)
    }
  }
}
