// Fault injection for the mesh handoff: a small mesh of real nodes (one sender that
// overflows, receivers with room), a local webhook that every node's output POSTs to
// (it records which node output which event, and slows the sender down on demand),
// the faults themselves (kill -9 of either side mid-handoff, SIGSTOP of a receiver),
// and the exactly-once check across all outputs. Shared by test/mesh/faults.test.ts
// and scripts/chaos-mesh.mjs, so the suite and the long loop check the same things.
// Invariants: every child goes through NodeProcess (killAllNodes kills it by pid);
// nothing waits a fixed time for something to happen, it polls with a deadline (the
// one fixed duration is how long a SIGSTOP lasts, which is the fault itself).

// The harness lives in faults/, one file per role; this is its front door.

export { reservePorts } from './ports.js'
export * from './faults/hook-server.js'
export * from './faults/fault-node.js'
export * from './faults/handing-off.js'
export * from './faults/delivery-check.js'
export * from './faults/fault-mesh.js'
