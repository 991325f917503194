// Broker URLs become MQTT.js options through the WHATWG parser (src/util/mqtt-url.ts),
// so Node 24 prints no url.parse deprecation at start.
import { describe, expect, it } from 'vitest'
import { brokerOptions } from '../../src/util/mqtt-url.js'

describe('brokerOptions', () => {
  it('reads scheme, host, port and credentials, with the default port for each scheme', () => {
    expect(brokerOptions('mqtt://broker:1884')).toEqual({ protocol: 'mqtt', host: 'broker', port: 1884 })
    expect(brokerOptions('mqtt://broker')).toEqual({ protocol: 'mqtt', host: 'broker', port: 1883 })
    expect(brokerOptions('mqtts://broker')).toEqual({ protocol: 'mqtts', host: 'broker', port: 8883 })
    expect(brokerOptions('tls://broker:9999')).toMatchObject({ protocol: 'mqtts', port: 9999 })
    expect(brokerOptions('tcp://10.0.0.7:1883')).toMatchObject({ protocol: 'mqtt', host: '10.0.0.7' })
    expect(brokerOptions('mqtt://[::1]:1883')).toMatchObject({ host: '::1', port: 1883 })
    expect(brokerOptions('mqtt://user%40x:p%3Ass@broker:1883')).toMatchObject({ username: 'user@x', password: 'p:ss' })
  })
})
