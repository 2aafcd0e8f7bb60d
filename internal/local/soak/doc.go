// Package soak is flowkey's chaos soak (`make soak`): rotations on the
// local stack (internal/local/stack) against random faults, recovered with
// flowkey's own commands, with the invariant checked after every step.
//
// # What a run does
//
// Run starts one stack with two key secrets: one that lists three phone
// numbers, one configured by waba_id over a second WABA of two. Each
// attempt rotates one of them, by RotateSecret (as the schedule does) or
// by {"command":"rotate"}, against the faults of its Plan:
//
//   - every Graph fault the simulator scripts (Graph errors: transient,
//     throttling, permanent, gone; 5xx pages; calls held past the request
//     timeout or just slow; truncated, HTML and empty bodies; errors on
//     HTTP 200 and with is_transient; dropped connections), on uploads,
//     reads, lists or every call;
//   - GET lag, forced MISMATCH and re-registration, a call budget,
//     latency and a revoked token;
//   - the bootstrap killed during a step (at a random moment, or while
//     the step's first Graph call is in flight);
//   - local-kms stopped, and started again between the rotation's runs or
//     during recovery.
//
// Then the attempt recovers in rounds, using only what an operator has:
// before each round some faults end (lag and MISMATCH often stay on while
// recovery runs; from round 3 every fault has ended), then status, and
// rotate when it says the rotation is incomplete (rotate resumes or clears
// as it decides) or resync when it says drifted. What the reports advise
// is followed: the steps to run by hand when rotate is blocked, and any
// label change they print. Nothing else touches the secret.
//
// After the run every secret is rotated once more with every fault off,
// and must succeed with one upload and one read per number.
//
// # The invariant
//
// It is checked on both secrets after every rotation, command and piece
// of advice, once no Graph call is in flight: every key Meta really holds
// (the simulator's own state, not a GET that may lag) for a secret's
// numbers has its private key in that secret's AWSCURRENT or AWSPENDING
// version, compared as DER (the public half of the stored private key
// against Meta's); exactly one version is AWSCURRENT; and AWSPENDING is
// absent, on AWSCURRENT, or on the version of the rotation that is
// incomplete (where it sits is counted). Two rules that protect the
// invariant count as violations too: status never answers healthy while a
// rotation is incomplete or a number holds another key than AWSCURRENT's,
// and no report advises removing AWSPENDING from a version that holds a
// key.
//
// # Determinism and bounds
//
// An attempt's plan is derived from the seed and the attempt's number
// alone (NewPlan), so SOAK_SEED replays every plan; each violation is
// reported with its seed, attempt and plan. Timing (where a kill lands)
// is not replayed exactly. A run stops by itself: after its attempts, or
// when its time budget leaves only the final rotations' reserve, which
// the table says. Every wait is bounded.
package soak
