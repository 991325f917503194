// Every step kind binge knows, as registry entries (registry-types.ts): the registry,
// config validation and the generated docs are all built from this one list.
import type { StepEntry } from '../registry-types.js'
import { dedupeEntry } from './dedupe.js'
import { filterEntry } from './filter.js'
import { mapEntry } from './map.js'
import { sampleEntry } from './sample.js'
import { throttleEntry } from './throttle.js'
import { windowEntry } from './window.js'

export const stepEntries: StepEntry[] = [filterEntry, mapEntry, dedupeEntry, sampleEntry, throttleEntry, windowEntry]
