// Every input kind binge knows besides HTTP. A new input is one file and one line here.
import type { InputEntry } from './types.js'

export const inputEntries: InputEntry[] = []
