// Acks held back until durable, with many messages in flight on one MQTT connection.
//
// MQTT.js reads the next packet only once the previous one is answered: the PUBACK of a
// QoS 1 message goes out in `handleMessage`'s callback, the PUBREC of a QoS 2 one in
// `customHandleAcks`'s. Waiting there for a durable write would allow one write per
// connection at a time. Instead the input answers those callbacks at once, and this
// window catches the PUBACK/PUBREC on its way out (MQTT.js's `_sendPacket`) and holds
// it until that message's events are durable. The broker sends at most `receiveMaximum`
// unacknowledged messages, so that is the window: its writes share one group commit.
// The broker may send more than that (mosquitto does, resending a session's backlog at
// a reconnect), so the window also bounds itself: past `limit` held acks it answers
// MQTT.js's callback only once acks went out, and MQTT.js stops reading meanwhile.
//
// Design constraints:
// - No ack before the message is durable; acks leave in the order the messages came
//   (MQTT 5 §4.6), so one slow message holds the acks of those behind it.
// - A held ack belongs to its connection: when the connection closes, the held ones
//   are dropped, never sent on the next connection. The broker sends those messages
//   again (the session is kept), and they are taken again: a duplicate at most per
//   message that was in flight.
// - A message whose take ended without a durable write (the input stopped) is never
//   acked; the broker keeps it.
import type { MqttClient } from 'mqtt'

interface AckPacket {
  cmd: string
  messageId?: number
}
type SendPacket = (packet: AckPacket, cb?: (err?: Error) => void, ...rest: unknown[]) => void

interface Held {
  messageId: number
  generation: number
  durable: boolean
  /** The PUBACK/PUBREC MQTT.js wanted to send; undefined until it tried. */
  packet?: AckPacket
}

export class AckWindow {
  /** Held acks in arrival order, from `head` on (a queue: shifting a long array costs its length). */
  private fifo: Held[] = []
  private head = 0
  /** Held acks by message id, before MQTT.js asked to send them. */
  private readonly waiting = new Map<number, Held>()
  private generation = 0
  private readonly send: SendPacket
  /** MQTT.js callbacks waiting for room (see the top). */
  private parked: Array<() => void> = []

  constructor(
    private readonly client: MqttClient,
    private readonly limit: number,
  ) {
    const internals = client as unknown as { _sendPacket: SendPacket }
    if (typeof internals._sendPacket !== 'function') throw new Error('this MQTT.js has no _sendPacket; the ack window needs it')
    this.send = internals._sendPacket.bind(client)
    internals._sendPacket = (packet, cb, ...rest) => {
      if (packet.cmd !== 'puback' && packet.cmd !== 'pubrec') return this.send(packet, cb, ...rest)
      const held = packet.messageId === undefined ? undefined : this.waiting.get(packet.messageId)
      if (!held) {
        // Every message's ack is held from its arrival; one not held belongs to a closed
        // connection (MQTT.js would store it and send it after the reconnect): drop it.
        cb?.()
        return
      }
      this.waiting.delete(held.messageId)
      held.packet = packet
      cb?.() // MQTT.js goes on to the next packet; the ack waits here.
      this.flush()
    }
    client.on('close', () => {
      // Held acks die with their connection; the broker resends those messages.
      this.generation++
      this.fifo = []
      this.head = 0
      this.waiting.clear()
      // Let MQTT.js finish with the old connection; the acks those callbacks send are dropped.
      for (const run of this.parked.splice(0)) run()
    })
  }

  /** Run MQTT.js's callback now when at most `limit` acks are held, else once they are. */
  whenRoom(run: () => void): void {
    if (this.size <= this.limit && this.parked.length === 0) run()
    else this.parked.push(run)
  }

  /** Hold the ack of this message until `durable` is called on the result. */
  hold(messageId: number): { durable(): void } {
    const held: Held = { messageId, generation: this.generation, durable: false }
    this.fifo.push(held)
    this.waiting.set(messageId, held)
    return {
      durable: () => {
        held.durable = true
        this.flush()
      },
    }
  }

  /** Messages whose ack is held. */
  get size(): number {
    return this.fifo.length - this.head
  }

  private flush(): void {
    while (this.head < this.fifo.length) {
      const first = this.fifo[this.head]!
      if (!first.durable || !first.packet) break
      this.fifo[this.head++] = undefined as unknown as Held
      if (first.generation === this.generation && this.client.connected) this.send(first.packet)
    }
    if (this.head === this.fifo.length) {
      this.fifo = []
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > this.fifo.length) {
      this.fifo = this.fifo.slice(this.head)
      this.head = 0
    }
    while (this.parked.length > 0 && this.size <= this.limit) this.parked.shift()!()
  }
}
