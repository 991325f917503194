// Every input kind binge knows besides HTTP. A new input is one file and one line here.
import { mqttInput } from './mqtt.js'
import type { InputEntry } from './types.js'

export const inputEntries: InputEntry[] = [mqttInput] as InputEntry[]
