// Every output kind binge knows, in the order the reference docs list them.
import type { OutputEntry } from '../registry-types.js'
import { fileOutput } from './file.js'
import { forwardOutput } from './forward.js'
import { httpOutput } from './http.js'
import { mqttOutput } from './mqtt.js'
import { natsOutput } from './nats.js'
import { redisOutput } from './redis.js'
import { stdoutOutput } from './stdout.js'

export const outputEntries: OutputEntry[] = [
  stdoutOutput,
  fileOutput,
  httpOutput,
  forwardOutput,
  mqttOutput,
  natsOutput,
  redisOutput,
] as OutputEntry[]
