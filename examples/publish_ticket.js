#!/usr/bin/env node
// Publish one customer contact to ticketq from Node.js, using only the contract in contracts/
// (see contracts/README.md): no Python, no management plugin.
//
//   npm install amqplib
//   TICKETQ_AMQP_URL=amqp://USER:PASSWORD@HOST:5672/ticketq node examples/publish_ticket.js [payload.json]
//
// payload.json is a ticket.submit payload (the `payload` object of the README's example);
// without it a built-in example contact is sent. Exit code 0 once the broker has confirmed the
// message; 1 if it refused or could not route it, or the connection failed: run it again, the
// message id is derived from the contact, so a second copy is a no-op.

"use strict";

const crypto = require("node:crypto");
const fs = require("node:fs");
const amqp = require("amqplib");

const EXCHANGE = "ticketq";
const ROUTING_KEY = "intake"; // = the queue of the service that takes ticket.submit
const TYPE = "ticket.submit";
const SCHEMA_VERSION = 1;
const PRODUCER = process.env.TICKETQ_PRODUCER || "node-example";
// Namespace of contact message ids, the same as the Python client's (contracts/README.md).
const CONTACT_IDS = "6f1c2b7e-4d0a-5c55-9a57-2d1f7e0c9b10";

// RFC 9562 UUID version 5 (SHA-1 of namespace + name).
function uuidv5(name, namespace) {
  const hash = crypto
    .createHash("sha1")
    .update(Buffer.from(namespace.replace(/-/g, ""), "hex"))
    .update(Buffer.from(name, "utf8"))
    .digest();
  const b = hash.subarray(0, 16);
  b[6] = (b[6] & 0x0f) | 0x50;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function contactMessageId(payload) {
  return uuidv5(`${payload.source}\u001f${payload.external_id}`, CONTACT_IDS);
}

function exampleContact() {
  return {
    source: "node-example",
    external_id: `demo-${Date.now()}`,
    channel: "email",
    customer: { id: "c-10086", nick: "小鱼爱喝茶" },
    order: {
      id: "2024050112345678",
      amount: "199.00", // money as a decimal string, at most 2 decimals
      paid_at: "2024-04-28T10:00:00+08:00",
      items: [{ sku: "KT-1500", title: "Electric kettle 1.5 L", quantity: 1, unit_price: "199.00" }],
    },
    subject: "Paid three days ago, not shipped yet",
    text: "When will my kettle ship?",
    occurred_at: new Date().toISOString(), // RFC 3339 with an offset (here `Z`)
  };
}

function envelope(payload) {
  return {
    message_id: contactMessageId(payload),
    type: TYPE,
    schema_version: SCHEMA_VERSION,
    correlation_id: null,
    causation_id: null,
    sent_at: new Date().toISOString(),
    producer: PRODUCER,
    payload,
  };
}

async function publish(url, message) {
  const connection = await amqp.connect(url, { clientProperties: { connection_name: PRODUCER } });
  try {
    const channel = await connection.createConfirmChannel();
    const returned = new Set();
    // With `mandatory`, an unroutable message comes back (before its ack) instead of vanishing.
    channel.on("return", (msg) => returned.add(msg.properties.messageId));
    await channel.checkExchange(EXCHANGE); // passive: ticketq declares its topology itself

    const sentAt = Math.floor(Date.parse(message.sent_at) / 1000);
    await new Promise((resolve, reject) => {
      channel.publish(
        EXCHANGE,
        ROUTING_KEY,
        Buffer.from(JSON.stringify(message), "utf8"),
        {
          persistent: true,
          mandatory: true,
          contentType: "application/json",
          messageId: message.message_id,
          type: message.type,
          appId: message.producer,
          timestamp: sentAt,
        },
        (err) => (err ? reject(new Error("the broker refused the message (nack)")) : resolve()),
      );
    });
    if (returned.has(message.message_id)) {
      throw new Error(`unroutable: no queue bound to ${EXCHANGE}/${ROUTING_KEY}`);
    }
    await channel.close();
  } finally {
    await connection.close();
  }
}

async function main() {
  const url = process.env.TICKETQ_AMQP_URL;
  if (!url) {
    console.error("set TICKETQ_AMQP_URL, e.g. amqp://USER:PASSWORD@HOST:5672/ticketq");
    return 2;
  }
  const file = process.argv[2];
  const payload = file ? JSON.parse(fs.readFileSync(file, "utf8")) : exampleContact();
  const message = envelope(payload);
  try {
    await publish(url, message);
  } catch (err) {
    console.error(`not delivered (${err.message}); run again: message id ${message.message_id}`);
    return 1;
  }
  console.log(`confirmed: ${message.type} ${message.message_id}`);
  return 0;
}

if (require.main === module) {
  main().then((code) => process.exit(code));
}

module.exports = { contactMessageId, envelope, uuidv5 };
