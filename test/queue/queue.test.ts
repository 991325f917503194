// Runs the shared queue suite against every backend.

import { backends } from './backends.js'
import { queueSuite } from './queue-suite.js'

for (const backend of backends) queueSuite(backend)
